"""Messages between the emulator's parameter server and its worker processes, over TCP.

A message is a frame: an 8-byte big-endian length, then a pickle (protocol 5: NumPy arrays go
as raw buffers, no text encoding). Pickle executes code from whoever sends it, so the emulator
is for machines that trust each other (a lab cluster, one laptop), like the parameter servers
of the frameworks it imitates; every connection is also checked with a per-run token.
"""

from __future__ import annotations

import pickle
import socket
import struct

HEADER = struct.Struct(">Q")
MAX_FRAME = 1 << 31  # 2 GiB: a larger length is a corrupt or foreign stream


class Closed(ConnectionError):
    """The other side closed the connection (or died)."""


def encode(message) -> bytes:
    payload = pickle.dumps(message, protocol=5)
    return HEADER.pack(len(payload)) + payload


def send(sock: socket.socket, message) -> int:
    """Send one message; returns the bytes written."""
    frame = encode(message)
    sock.sendall(frame)
    return len(frame)


def recv(sock: socket.socket):
    """Receive one message (blocking)."""
    return pickle.loads(_exactly(sock, _length(_exactly(sock, HEADER.size))))


def _length(header) -> int:
    """The payload length a frame's header gives (a foreign stream's is refused)."""
    (length,) = HEADER.unpack_from(header)
    if length > MAX_FRAME:
        raise Closed(f"a frame of {length} bytes: not an ashlsim peer")
    return length


def _exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise Closed("connection closed")
        got += k
    return bytes(buf)


class Reader:
    """Frames from a non-blocking socket, as bytes arrive (the PS reads many sockets)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buf = bytearray()
        self.bytes = 0  # received so far

    def feed(self) -> list:
        """Read what is there; return the messages completed, each with its frame's size in
        bytes. Raises ``Closed`` at EOF."""
        try:
            chunk = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as exc:  # reset by a killed peer
            raise Closed(str(exc)) from None
        if not chunk:
            raise Closed("connection closed")
        self.bytes += len(chunk)
        buf = self._buf
        buf += chunk
        out = []
        while len(buf) >= HEADER.size:
            end = HEADER.size + _length(buf)
            if len(buf) < end:
                break
            out.append((pickle.loads(bytes(buf[HEADER.size : end])), end))
            del buf[:end]
        return out


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
