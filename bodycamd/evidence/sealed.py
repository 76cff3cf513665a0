"""Personal fields of audit events, sealed to the evidence public key.

The journal is the one place on flash where who wore the camera would otherwise be written in
clear: personnel numbers at login and logout, the officer of a recording, marker notes. Those
fields are sealed exactly as a segment's data key is (single-shot HPKE base mode to the back
end's evidence key, here with info = label ‖ event kind), so a stolen device does not say who
wore it. The audit chain hashes and signs the event as stored, sealed form included, so it
stays verifiable without any key; only the back end, with the private key, opens the fields.

Stored form: the personal fields are removed and one field is added,

    "sealed": {"kem": "x25519" | "mlkem768-x25519", "hpke": base64(enc ‖ ciphertext)}

whose plaintext is the canonical JSON (sorted keys, no spaces) of the removed fields.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..errors import IntegrityError, WrongKeyError
from .keys import EvidencePrivateKey, EvidencePublicKey, hpke_suite

LABEL_AUDIT_FIELDS = b"bodycamd/v1 audit-fields\0"
PERSONAL_FIELDS = frozenset({"personnel_number", "officer", "note"})
SEALED = "sealed"


def _info(kind: str) -> bytes:
    return LABEL_AUDIT_FIELDS + kind.encode("utf-8")


def seal_personal(kind: str, fields: dict[str, Any], key: EvidencePublicKey) -> dict[str, Any]:
    """`fields` with its personal fields (those present and not None) sealed."""
    personal = {k: v for k, v in fields.items() if k in PERSONAL_FIELDS and v is not None}
    if not personal:
        return fields
    plaintext = json.dumps(personal, sort_keys=True, separators=(",", ":")).encode()
    blob = hpke_suite(key.kem).encrypt(plaintext, key.key, info=_info(kind))
    kept = {k: v for k, v in fields.items() if k not in personal}
    kept[SEALED] = {"kem": key.kem, "hpke": base64.b64encode(blob).decode()}
    return kept


def open_personal(kind: str, fields: dict[str, Any], key: EvidencePrivateKey) -> dict[str, Any]:
    """The back end's view: the sealed personal fields opened and put back."""
    sealed = fields.get(SEALED)
    if sealed is None:
        return fields
    if not isinstance(sealed, dict) or sealed.get("kem") != key.kem:
        raise WrongKeyError(f"{kind} event: personal fields are not sealed to a {key.kem} key")
    try:
        blob = base64.b64decode(str(sealed.get("hpke", "")), validate=True)
        plaintext = hpke_suite(key.kem).decrypt(blob, key.key, info=_info(kind))
    except binascii.Error as exc:
        raise IntegrityError(f"{kind} event: sealed fields are not base64") from exc
    except Exception as exc:  # cryptography raises InvalidTag and friends
        raise WrongKeyError(
            f"{kind} event: the evidence key given does not open its personal fields"
        ) from exc
    opened = {k: v for k, v in fields.items() if k != SEALED}
    opened.update(json.loads(plaintext))
    return opened
