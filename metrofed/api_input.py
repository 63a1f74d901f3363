"""What every gRPC request goes through before a servicer reads it: decoding that names the broken
field, then the input limits of ``metrofed.domain.limits`` applied field by field.

Both run in the server's ErrorInterceptor (metrofed.grpc_server), so every RPC of both services,
present and future, is covered: a new field without an entry in the limits table fails a unit test,
and an RPC needs no code of its own to be bounded.

Decoding here rather than in grpc: grpc answers bytes it cannot deserialize with INTERNAL and no
detail. A string that is not UTF-8 is bad input like any other, so it gets INVALID_ARGUMENT naming the
field (``capability.bands[0].unit: is not valid UTF-8``), found by reading the wire format.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor

from metrofed.domain import limits
from metrofed.domain.capability import DomainError

__all__ = ["decode_request", "check_limits", "locate_decode_error"]

_FD = FieldDescriptor
_INTS = frozenset({_FD.TYPE_INT32, _FD.TYPE_INT64, _FD.TYPE_UINT32, _FD.TYPE_UINT64, _FD.TYPE_SINT32,
                   _FD.TYPE_SINT64, _FD.TYPE_FIXED32, _FD.TYPE_FIXED64, _FD.TYPE_SFIXED32, _FD.TYPE_SFIXED64})
_FLOATS = frozenset({_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT})
# Fields outside the table (messages of other packages, e.g. grpc.health): bounded all the same.
_DEFAULT_TEXT = limits.Limit("text", max_len=limits.TEXT)
_DEFAULT_NUMBER = limits.Limit("number")
_DEFAULT_INT = limits.Limit("int")


def decode_request(raw: bytes, deserializer) -> object:
    """``deserializer(raw)``, or DomainError naming the field that made it fail."""
    try:
        return deserializer(raw)
    except Exception:  # noqa: BLE001 - upb raises DecodeError; anything it raises means "not this message"
        pass
    descriptor = _descriptor_of(deserializer)
    where = locate_decode_error(raw, descriptor) if descriptor is not None else ""
    if where:
        raise DomainError(*where)
    name = descriptor.full_name if descriptor is not None else "the request message"
    raise DomainError("request", f"cannot be decoded as {name}")


def _descriptor_of(deserializer):
    owner = getattr(deserializer, "__self__", None)  # the generated code passes Message.FromString
    return getattr(owner, "DESCRIPTOR", None)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise IndexError
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def locate_decode_error(data: bytes, descriptor, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """(field path, reason) of the first field that cannot be decoded, or None when nothing is found.
    Only what upb checks is looked for: UTF-8 of string fields, truncation, wire types, nesting depth."""
    here = path or "request"
    if depth > 32:
        return here, "is nested too deeply"
    seen: dict[int, int] = {}
    pos = 0
    while pos < len(data):
        try:
            key, pos = _varint(data, pos)
        except IndexError:
            return here, "is truncated"
        number, wire = key >> 3, key & 7
        fd = descriptor.fields_by_number.get(number)
        field = here
        if fd is not None:
            i = seen.get(number, 0)
            seen[number] = i + 1
            field = f"{path}.{fd.name}" if path else fd.name
            if fd.is_repeated and not (fd.message_type is not None and fd.message_type.GetOptions().map_entry):
                field += f"[{i}]"
        try:
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                n, pos = _varint(data, pos)
                chunk = data[pos:pos + n]
                pos += n
                if len(chunk) < n:
                    return field, "is truncated"
                if fd is not None and fd.type == _FD.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return field, "is not valid UTF-8"
                elif fd is not None and fd.type == _FD.TYPE_MESSAGE:
                    inner = locate_decode_error(chunk, fd.message_type, field, depth + 1)
                    if inner is not None:
                        return inner
            else:  # groups (3, 4) are not proto3; 6 and 7 do not exist
                return field, f"has an invalid wire type {wire}"
        except IndexError:
            return field, "is truncated"
        if pos > len(data):
            return field, "is truncated"
    return None


def check_limits(msg, path: str = "") -> None:
    """Every set field of ``msg`` (recursively) within its limit; DomainError naming the first that is not."""
    desc = msg.DESCRIPTOR
    for fd, value in msg.ListFields():
        field = f"{path}.{fd.name}" if path else fd.name
        limit = limits.limit_for(desc.name, fd.name) if desc.full_name.startswith("metrofed.") else None
        if limit is not None and limit.kind == "ignored":
            continue
        if fd.is_repeated:
            if limit is not None and limit.max_items is not None:
                limits.check_count(len(value), field, limit.max_items)
            for i, item in enumerate(value):
                _check_value(fd, item, f"{field}[{i}]", limit)
        else:
            _check_value(fd, value, field, limit)


def _check_value(fd, value, field: str, limit: limits.Limit | None) -> None:
    t = fd.type
    if t == _FD.TYPE_MESSAGE:
        check_limits(value, field)
    elif t == _FD.TYPE_STRING:
        if limit is None or limit.kind not in ("id", "line", "text"):
            limit = _DEFAULT_TEXT
        limits.check_text(value, field, limit)
    elif t in _FLOATS:
        limits.check_number(value, field, limit if limit is not None and limit.kind == "number" else _DEFAULT_NUMBER)
    elif t in _INTS:
        limits.check_int(value, field, limit if limit is not None and limit.kind == "int" else _DEFAULT_INT)
    elif t == _FD.TYPE_ENUM:
        if fd.enum_type.values_by_number.get(value) is None:
            known = sorted(fd.enum_type.values_by_number)
            raise DomainError(field, f"unknown value {value} of {fd.enum_type.name}; this build knows "
                                     f"{known[0]}–{known[-1]}")
    elif t == _FD.TYPE_BYTES:
        if limit is not None and limit.max_len is not None and len(value) > limit.max_len:
            raise DomainError(field, f"is {len(value):,} bytes long; at most {limit.max_len:,}")
