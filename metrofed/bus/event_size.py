"""The bound on one bus event, checked when the event is staged, and which field made it too big.

The broker refuses a record batch above ``message.max.bytes`` (1 MiB by default, and the producer's
``max_request_size`` is the same 1 MiB). An event is bounded well below that, at 512 KiB: the record also
carries headers (trace context, event id and type), the batch has its own framing, signed events (issue 8)
add a signature and key id to the envelope, and a consumer's default ``max.partition.fetch.bytes`` (1 MiB)
must always fit a whole record. Half the broker's limit leaves room for all of it without tuning the
broker, and no legitimate event comes close: the largest seed capability's event is 604 bytes. Large
documents (certificates) do not travel on the bus at all (claim check, docs/outbox.md).
"""

from __future__ import annotations

from google.protobuf import message as _message
from google.protobuf.descriptor import FieldDescriptor

MAX_EVENT_BYTES = 512 * 1024


def _field_size(fd: FieldDescriptor, value) -> int:
    items = value if fd.is_repeated else [value]
    total = 0
    for item in items:
        if isinstance(item, _message.Message):
            total += item.ByteSize()
        elif isinstance(item, (str, bytes)):
            total += len(item.encode() if isinstance(item, str) else item)
        else:
            total += 8
    return total


def largest_field(msg: _message.Message, prefix: str = "") -> str:
    """The dotted path of the field that contributes most to ``msg``'s size, descending through singular
    sub-messages (``capability.bands`` for a capability with too many bands). Empty when nothing is set."""
    fields = msg.ListFields()
    if not fields:
        return prefix.rstrip(".")
    fd, value = max(fields, key=lambda fv: _field_size(fv[0], fv[1]))
    path = f"{prefix}{fd.name}"
    if not fd.is_repeated and isinstance(value, _message.Message):
        return largest_field(value, path + ".")
    return path
