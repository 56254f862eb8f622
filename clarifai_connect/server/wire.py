"""Protobuf wire bytes built by hand, for the hot path of PostInputs.

Parsing concatenated serializations merges them (scalars: the last wins; sub-messages:
merged field by field; repeated fields: appended). So a stored Input can be its request
message serialized once plus a few fields appended as bytes, and a response item the
stored bytes plus its hosted URLs — instead of setting each field on a message through
the Python API and serializing again, which cost most of a PostInputs call per input.

Only length-delimited fields (strings, bytes, messages) are built here; tags come from
the message descriptors, never from numbers written out by hand.
"""

from __future__ import annotations

from google.protobuf.message import Message

_WIRE_LENGTH_DELIMITED = 2


def varint(value: int) -> bytes:
    """``value`` (≥ 0) as a protobuf varint."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(message: type[Message], name: str) -> bytes:
    """The key bytes of the length-delimited field ``name`` of ``message``."""
    number = message.DESCRIPTOR.fields_by_name[name].number
    return varint(number << 3 | _WIRE_LENGTH_DELIMITED)


def field(key: bytes, payload: bytes) -> bytes:
    """One length-delimited field: ``key`` (from :func:`tag`), the length, ``payload``."""
    size = len(payload)
    return key + (bytes((size,)) if size < 0x80 else varint(size)) + payload


def nested(keys: tuple[bytes, ...], payload: bytes) -> bytes:
    """``payload`` wrapped in the fields ``keys``, outermost first: ``nested((a, b), p)``
    is field ``a`` holding field ``b`` holding ``p``."""
    for key in reversed(keys):
        payload = field(key, payload)
    return payload
