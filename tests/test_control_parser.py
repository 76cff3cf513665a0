"""The request parser against hostile input: every malformed line is one `bad_request` (or
`too_large`/`unknown_command`), nothing else escapes, and whatever is echoed back is JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bodycamd.control.protocol import (
    MAX_DEPTH,
    MAX_REQUEST,
    ProtocolError,
    failure,
    parse_request,
    success,
    too_deep,
)

HOSTILE = [
    b"[" * 60_000,
    b"{" * 60_000,
    b'{"v":1,"cmd":"status","id":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    b'{"v":1,"cmd":"status","id":' + b"9" * 5_000 + b"}",
    b'{"v":1,"cmd":"status","id":-' + b"9" * 5_000 + b"}",
    b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":' + b"9" * 400 + b"}}",
    b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":1e999}}',
    b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":1e300}}',
    b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":-1}}',
    b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":true}}',
    b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":"3"}}',
    b'{"v":1,"cmd":"sim","args":{"action":"fly"}}',
    b'{"v":1,"cmd":"status","id":1e999}',
    b'{"v":1,"cmd":"status","id":-1e999}',
    b'{"v":1,"cmd":"status","id":NaN}',
    b'{"v":1,"cmd":"status","id":Infinity}',
    b'{"v":1,"cmd":"status","id":1' + b"0" * 100 + b".5}",
    b'{"v":true,"cmd":"status"}',
    b'{"v":1.0,"cmd":"status"}',
    b'{"v":"1","cmd":"status"}',
    b'{"v":2,"cmd":"status"}',
    b'{"cmd":"status"}',
    b'{"v":1,"cmd":["status"]}',
    b'{"v":1,"cmd":"status","args":[]}',
    b'{"v":1,"cmd":"login","args":{"personnel_number":123456}}',
    b'{"v":1,"cmd":"login","args":{"personnel_number":"1","x":1}}',
    b'{"v":1,"cmd":"stealth","args":{"enabled":1}}',
    b"\xff\xfe\x00",
    b'"\\"' * 20_000,
    b'{"v":1,"cmd":"status","id":"\\ud800"',
    b"[]",
    b"null",
    b"",
]


@pytest.mark.parametrize("line", HOSTILE, ids=lambda line: repr(line[:40]))
def test_hostile_line_is_a_bad_request(line: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(line)
    assert caught.value.code == "bad_request"
    # the reply is strict JSON, whatever id the request carried
    reply = failure(caught.value.request_id, caught.value.code, str(caught.value))
    json.loads(reply, parse_constant=lambda c: pytest.fail(f"non-JSON {c} echoed"))
    assert len(reply) < 1024


def test_longer_than_the_limit_is_too_large() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(b'{"v":1,"cmd":"marker","args":{"note":"' + b"x" * MAX_REQUEST + b'"}}')
    assert caught.value.code == "too_large"


def test_brackets_inside_strings_are_text() -> None:
    note = "[[[[{{{{" * 20 + '\\"]]]'
    request = parse_request(json.dumps({"v": 1, "cmd": "marker", "args": {"note": note}}).encode())
    assert request.args["note"] == note
    nested: Any = 1
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    assert parse_request(json.dumps({"v": 1, "cmd": "status", "id": nested}).encode()).id == nested
    assert too_deep(json.dumps({"id": [nested]}).encode())
    assert not too_deep(json.dumps({"id": nested}).encode())


def test_good_requests_still_parse() -> None:
    hold = parse_request(b'{"v":1,"id":9,"cmd":"sim","args":{"action":"hold","seconds":3}}')
    assert hold.args == {"action": "hold", "seconds": 3} and hold.id == 9
    assert (
        parse_request(b'{"v":1,"cmd":"sim","args":{"action":"hold","seconds":0.5}}').args["seconds"]
        == 0.5
    )
    assert parse_request(b'{"v":1,"id":-999999999999999999,"cmd":"status"}').id == -(10**18 - 1)


def _checked(line: bytes) -> None:
    """The contract: a Request, or a ProtocolError with a stable code; a strict-JSON reply."""
    try:
        request = parse_request(line)
    except ProtocolError as exc:
        assert exc.code in {"bad_request", "unknown_command", "too_large"}
        reply = failure(exc.request_id, exc.code, str(exc))
    else:
        reply = success(request.id, {})
    json.loads(reply, parse_constant=lambda c: pytest.fail(f"non-JSON {c} echoed"))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes(line: bytes) -> None:
    _checked(line)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "v": st.one_of(st.just(1), json_values),
            "id": json_values,
            "cmd": st.one_of(st.sampled_from(["status", "login", "sim", "marker"]), json_values),
            "args": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "action": st.sampled_from(["press", "hold", "dock"]) | json_values,
                        "seconds": json_values,
                        "personnel_number": json_values,
                        "note": json_values,
                    },
                ),
                json_values,
            ),
        },
    )
)
def test_fuzz_structured(request: dict[str, Any]) -> None:
    line = json.dumps(request).encode()
    _checked(line)
    try:
        parsed = parse_request(line)
    except ProtocolError:
        return
    seconds = parsed.args.get("seconds")
    assert seconds is None or (type(seconds) in (int, float) and 0 < seconds <= 60)
    assert not isinstance(seconds, float) or math.isfinite(seconds)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='[]{}"\\ a1,:', max_size=200))
def test_fuzz_brackets_and_escapes(text: str) -> None:
    _checked(text.encode())
