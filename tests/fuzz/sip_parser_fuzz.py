"""libFuzzer target (atheris) for the SIP message layer.

Run: ``.venv/bin/python tests/fuzz/sip_parser_fuzz.py -dict=tests/fuzz/sip.dict CORPUS_DIR``
(seed CORPUS_DIR with ../shared/sip-torture/*.dat). A crash is anything escaping the
parser other than `SipParseError`, a `SipParseError` from the parser's internal safety
net, or an accepted message that does not survive a serialize/parse round trip.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from firmware.sip import SipParseError, StreamFramer, error_response, parse_message


def _check_error(exc: SipParseError) -> None:
    if exc.internal:
        raise AssertionError(f"parser bug behind {exc!r}") from exc.__cause__
    response = error_response(exc, to_tag="fuzz")
    if response is not None:
        response.to_bytes()


def test_one_input(data: bytes) -> None:
    for stream in (False, True):
        try:
            message = parse_message(data, stream=stream)
        except SipParseError as exc:
            _check_error(exc)
            continue
        try:
            message.validate()
        except SipParseError as exc:
            _check_error(exc)
        wire = message.to_bytes()
        again = parse_message(wire, stream=True)
        if again != message or again.to_bytes() != wire:
            raise AssertionError("accepted message does not round-trip")
    try:
        for item in StreamFramer().feed(data):
            if isinstance(item, bytes):
                try:
                    parse_message(item, stream=True)
                except SipParseError as exc:
                    _check_error(exc)
    except SipParseError as exc:
        _check_error(exc)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
