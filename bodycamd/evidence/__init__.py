"""Evidence segments: the format the camera writes and a court is shown.

The normative specification is docs/segment-format.md; `format` is its byte layout,
`writer` the device side, `reader` the keyless scan and the decrypting reader, `recovery`
sealing after power loss, `chain` the links between segments, and `keys` the key files.
"""

from .chain import ChainFault, ChainLink, ChainReport, assess_chain, check_chain, group_by_recording
from .keys import (
    EvidencePrivateKey,
    EvidencePublicKey,
    generate_evidence_key,
    load_evidence_private_key,
    load_evidence_public_key,
    load_or_create_device_key,
)
from .reader import SegmentReader, Verdict, read_segment, scan_segment
from .recovery import Recovered, seal_interrupted_roll, seal_torn
from .writer import SealedSegment, SegmentInfo, SegmentWriter

__all__ = [
    "ChainFault",
    "ChainLink",
    "ChainReport",
    "EvidencePrivateKey",
    "EvidencePublicKey",
    "Recovered",
    "SealedSegment",
    "SegmentInfo",
    "SegmentReader",
    "SegmentWriter",
    "Verdict",
    "assess_chain",
    "check_chain",
    "generate_evidence_key",
    "group_by_recording",
    "load_evidence_private_key",
    "load_evidence_public_key",
    "load_or_create_device_key",
    "read_segment",
    "scan_segment",
    "seal_interrupted_roll",
    "seal_torn",
]
