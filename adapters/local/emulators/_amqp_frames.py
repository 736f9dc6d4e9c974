"""AMQP 1.0 frames on the AMQP broker's socket, around proton's `Transport`.

The broker (`amqp.py`) feeds proton the bytes it reads and writes the bytes proton produces;
this module sees both streams, frame by frame:

- `Padder` rewrites what the broker writes. AMQP 1.0 (§1.4) lets a sender omit the trailing
  fields of a performative that hold their default, and proton does. azure-eventhub 5.15's
  decoder (`azure.eventhub._pyamqp._decode.decode_frame`) does not pad them back, and indexes
  the fields it reads (`frame[7]` of BEGIN, `frame[13]` of ATTACH, `frame[11]`, the payload,
  of TRANSFER), so a short performative fails it with an IndexError. Every performative is
  therefore written with all its fields, the omitted ones as their AMQP defaults (a null
  where the default is none), which means the same to any peer. azure-servicebus 7.15 pads
  on its side and reads the padded frames alike.
- `TransferFormats` reads what the broker receives: the `message-format` of each TRANSFER,
  which proton does not expose. Event Hubs and Service Bus send a batch as one message of
  format 0x80013700 whose data sections are the messages.
"""

from __future__ import annotations

import struct
from collections import defaultdict, deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The message format of an Azure batch message (a message whose data sections are messages).
BATCH_FORMAT = 0x80013700

_HEADER = b"AMQP"
_FRAME = struct.Struct(">IBBH")  # size, data offset (in 4-byte words), type, channel
_AMQP, _SASL = 0, 1
_TRANSFER = 0x14

_NULL = b"\x40"
_FALSE = b"\x42"


def _ubyte(value: int) -> bytes:
    return b"\x50" + bytes((value,))


def _ushort(value: int) -> bytes:
    return b"\x60" + struct.pack(">H", value)


def _uint(value: int) -> bytes:
    return b"\x70" + struct.pack(">I", value)


#: (frame type, performative code) → each field's encoded default, in wire order. Fields a
#: sender must always write are nulls here: they are never missing.
_DEFAULTS: dict[tuple[int, int], tuple[bytes, ...]] = {
    # open: container-id, hostname, max-frame-size, channel-max, idle-time-out,
    # outgoing-locales, incoming-locales, offered-/desired-capabilities, properties
    (_AMQP, 0x10): (_NULL, _NULL, _uint(0xFFFFFFFF), _ushort(0xFFFF), *(_NULL,) * 6),
    # begin: remote-channel, next-outgoing-id, incoming-window, outgoing-window, handle-max,
    # offered-/desired-capabilities, properties
    (_AMQP, 0x11): (_NULL, _NULL, _NULL, _NULL, _uint(0xFFFFFFFF), _NULL, _NULL, _NULL),
    # attach: name, handle, role, snd-settle-mode (mixed), rcv-settle-mode (first), source,
    # target, unsettled, incomplete-unsettled, initial-delivery-count, max-message-size,
    # offered-/desired-capabilities, properties
    (_AMQP, 0x12): (
        *(_NULL,) * 3,
        _ubyte(2),
        _ubyte(0),
        _NULL,
        _NULL,
        _NULL,
        _FALSE,
        *(_NULL,) * 5,
    ),
    # flow: next-incoming-id, incoming-window, next-outgoing-id, outgoing-window, handle,
    # delivery-count, link-credit, available, drain, echo, properties
    (_AMQP, 0x13): (*(_NULL,) * 8, _FALSE, _FALSE, _NULL),
    # transfer: handle, delivery-id, delivery-tag, message-format, settled, more,
    # rcv-settle-mode, state, resume, aborted, batchable
    (_AMQP, _TRANSFER): (*(_NULL,) * 5, _FALSE, _NULL, _NULL, _FALSE, _FALSE, _FALSE),
    # disposition: role, first, last, settled, state, batchable
    (_AMQP, 0x15): (_NULL, _NULL, _NULL, _FALSE, _NULL, _FALSE),
    (_AMQP, 0x16): (_NULL, _FALSE, _NULL),  # detach: handle, closed, error
    (_AMQP, 0x17): (_NULL,),  # end: error
    (_AMQP, 0x18): (_NULL,),  # close: error
    (_SASL, 0x40): (_NULL,),  # sasl-mechanisms
    (_SASL, 0x44): (_NULL, _NULL),  # sasl-outcome: code, additional-data
}


def _frames(buffer: bytearray) -> Iterator[bytes]:
    """Take the complete protocol headers and frames off the front of `buffer`."""
    while len(buffer) >= 8:
        if buffer[:4] == _HEADER:
            size = 8
        else:
            size = _FRAME.unpack_from(buffer)[0]
            if size < 8:
                raise ValueError(f"AMQP frame of {size} bytes")
        if len(buffer) < size:
            return
        frame = bytes(buffer[:size])
        del buffer[:size]
        yield frame


def _performative(frame: bytes) -> tuple[int, int, int] | None:
    """(frame type, performative code, offset of its field list), or None for a protocol
    header or an empty (heartbeat) frame."""
    if frame[:4] == _HEADER:
        return None
    offset = frame[4] * 4
    if len(frame) <= offset + 2 or frame[offset] != 0x00:
        return None
    constructor = frame[offset + 1]
    if constructor == 0x53:  # smallulong descriptor
        return frame[5], frame[offset + 2], offset + 3
    if constructor == 0x80:  # ulong descriptor
        return frame[5], struct.unpack_from(">Q", frame, offset + 2)[0], offset + 10
    return None


def _list(frame: bytes, at: int) -> tuple[int, bytes, int]:
    """The list encoded at `at`: (its count, its encoded fields, where it ends)."""
    constructor = frame[at]
    if constructor == 0x45:  # list0
        return 0, b"", at + 1
    if constructor == 0xC0:  # list8: size (count included), count
        size, count = frame[at + 1], frame[at + 2]
        return count, frame[at + 3 : at + 2 + size], at + 2 + size
    if constructor == 0xD0:  # list32
        size, count = struct.unpack_from(">II", frame, at + 1)
        return count, frame[at + 9 : at + 5 + size], at + 5 + size
    raise ValueError(f"a performative is a list, not constructor 0x{constructor:02x}")


def _encode_list(count: int, fields: bytes) -> bytes:
    if len(fields) + 1 <= 0xFF:
        return bytes((0xC0, len(fields) + 1, count)) + fields
    return b"\xd0" + struct.pack(">II", len(fields) + 4, count) + fields


def pad(frame: bytes) -> bytes:
    """The frame with every field of its performative written (see the module docstring)."""
    found = _performative(frame)
    if found is None:
        return frame
    kind, code, at = found
    defaults = _DEFAULTS.get((kind, code))
    if defaults is None:
        return frame
    count, fields, end = _list(frame, at)
    if count >= len(defaults):
        return frame
    padded = _encode_list(len(defaults), fields + b"".join(defaults[count:]))
    body = frame[8:at] + padded + frame[end:]
    return _FRAME.pack(8 + len(body), frame[4], frame[5], _FRAME.unpack_from(frame)[3]) + body


class Padder:
    """Pads the frames of the byte stream proton writes; frames split across writes are
    held until complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        return b"".join(pad(frame) for frame in _frames(self._buffer))


def with_header(message: bytes, ttl: int | None, delivery_count: int) -> bytes:
    """An encoded message with its header section replaced by one with every field written:
    durable, priority 4, the time-to-live in milliseconds (or none), not first-acquirer, and
    the delivery count. Proton writes a header without the fields that hold their defaults,
    and the SDKs then read no delivery count (None rather than 0)."""
    if message[:3] == b"\x00\x53\x70":  # proton's header section: skip it
        message = message[_list(message, 3)[2] :]
    fields = b"\x41" + _ubyte(4) + (_NULL if ttl is None else _uint(ttl))
    fields += _FALSE + _uint(delivery_count)
    return b"\x00\x53\x70" + _encode_list(5, fields) + message


def _uint_field(frame: bytes, at: int) -> tuple[int | None, int]:
    constructor = frame[at]
    if constructor == 0x40:
        return None, at + 1
    if constructor == 0x43:  # uint0
        return 0, at + 1
    if constructor == 0x52:  # smalluint
        return frame[at + 1], at + 2
    if constructor == 0x70:
        return struct.unpack_from(">I", frame, at + 1)[0], at + 5
    raise ValueError(f"expected a uint, found constructor 0x{constructor:02x}")


def _binary_field(frame: bytes, at: int) -> tuple[bytes | None, int]:
    constructor = frame[at]
    if constructor == 0x40:
        return None, at + 1
    if constructor == 0xA0:  # vbin8
        size = frame[at + 1]
        return frame[at + 2 : at + 2 + size], at + 2 + size
    if constructor == 0xB0:  # vbin32
        size = struct.unpack_from(">I", frame, at + 1)[0]
        return frame[at + 5 : at + 5 + size], at + 5 + size
    raise ValueError(f"expected binary, found constructor 0x{constructor:02x}")


class TransferFormats:
    """Reads the byte stream the broker receives for the `message-format` of each delivery
    that is not a plain message (format 0), by delivery tag, in arrival order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._formats: defaultdict[bytes, deque[int]] = defaultdict(deque)

    def feed(self, data: bytes) -> None:
        self._buffer += data
        for frame in _frames(self._buffer):
            found = _performative(frame)
            if found is None or found[:2] != (_AMQP, _TRANSFER):
                continue
            count, fields, _ = _list(frame, found[2])
            if count < 4:
                continue  # no message-format: format 0, or a continuation frame
            at = 0
            _, at = _uint_field(fields, at)  # handle
            _, at = _uint_field(fields, at)  # delivery-id
            tag, at = _binary_field(fields, at)
            message_format, _ = _uint_field(fields, at)
            if tag is not None and message_format:
                self._formats[tag].append(message_format)

    def take(self, tag: bytes) -> int:
        """The format of the delivery with this tag that arrived first and is not taken yet."""
        formats = self._formats.get(tag)
        if not formats:
            return 0
        message_format = formats.popleft()
        if not formats:
            del self._formats[tag]
        return message_format
