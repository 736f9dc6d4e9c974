"""A gRPC server that does no work, for `dapr_api_latency.py`: it answers every call at once
with one prepared `InvokeBindingResponse`, so the time the official client takes against it
is what the client and loopback cost alone, the floor under any server's added latency.

Just enough HTTP/2 for grpcio's client on one connection at a time: it sends its SETTINGS
(large windows, so it never waits for flow control), acknowledges the client's SETTINGS and
PINGs, and answers a stream when its request ends; every other frame is read and ignored.

    .venv/bin/python benchmarks/_grpc_floor.py DATA   # prints its port, serves until killed
"""

from __future__ import annotations

import socket
import struct
import sys
import threading

from dapr.proto.runtime.v1.binding_pb2 import InvokeBindingResponse

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0x0, 0x1, 0x4, 0x6, 0x7, 0x8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + struct.pack(">BBI", kind, flags, stream) + payload


def literal(name: bytes, value: bytes) -> bytes:
    """An HPACK header field written out in full (not indexed, no Huffman coding)."""
    return bytes((0, len(name))) + name + bytes((len(value),)) + value


def answer(stream: int, message: bytes, received: int) -> bytes:
    """A whole gRPC answer (headers, the message, status OK), and the connection window the
    request used given back."""
    headers = b"\x88" + literal(b"content-type", b"application/grpc")  # 0x88: :status 200
    body = b"\x00" + len(message).to_bytes(4, "big") + message
    return (
        frame(HEADERS, END_HEADERS, stream, headers)
        + frame(DATA, 0, stream, body)
        + frame(HEADERS, END_HEADERS | END_STREAM, stream, literal(b"grpc-status", b"0"))
        + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", max(received, 1)))
    )


def serve(connection: socket.socket, message: bytes) -> None:
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = connection.makefile("rb", buffering=65536)
    if stream.read(len(PREFACE)) != PREFACE:
        return
    window = struct.pack(">HI", 0x4, 1 << 24)  # SETTINGS_INITIAL_WINDOW_SIZE
    connection.sendall(
        frame(SETTINGS, 0, 0, window) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30))
    )
    received = 0
    while len(head := stream.read(9)) == 9:
        length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
        number = int.from_bytes(head[5:], "big") & 0x7FFFFFFF
        payload = stream.read(length)
        if kind == DATA:
            received += length
            if flags & END_STREAM:
                connection.sendall(answer(number, message, received))
                received = 0
        elif kind in (SETTINGS, PING) and not flags & ACK:
            connection.sendall(frame(kind, ACK, 0, payload if kind == PING else b""))
        elif kind == GOAWAY:
            break
    connection.close()


def main() -> None:
    message = InvokeBindingResponse(data=sys.argv[1].encode()).SerializeToString()
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=serve, args=(connection, message), daemon=True).start()


if __name__ == "__main__":
    main()
