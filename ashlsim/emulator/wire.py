"""Messages between the emulator's parameter server and its worker processes, over TCP.

Nothing that arrives is trusted until the peer has proved it holds the run's key, and nothing
that arrives can execute anything even then:

* **The handshake** (both directions, as ``multiprocessing.connection`` does with its authkey;
  the key never travels): the PS sends ``MAGIC`` and a fresh nonce; the worker answers with
  its index, a nonce of its own and ``HMAC-SHA256(key, "worker" | PS nonce | index)``; the PS
  checks it (``hmac.compare_digest``) and answers ``HMAC(key, "ps" | worker nonce | index)``,
  which the worker checks before it reads anything else. Every piece has a fixed size, so a
  stranger can neither announce a large read nor send anything that is parsed.
* **A frame** is an 8-byte big-endian length, a 4-byte header length, a JSON header (the
  message's kind, its scalar fields, and the dtype and shape of each array) and the arrays'
  raw bytes. Kinds, fields and dtypes come from fixed lists; a frame longer than the receiver's
  ``limit`` (what the run's model needs, and a margin) is refused before it is read. There is
  no pickle: a malformed frame is a ``Closed`` error, never code.

The messages, as the PS and the workers use them (tuples): ``("setup", scenario_dict, seed)``,
``("ready", index, pid)``, ``("work", job)``, ``("push", seq, message, math_s, busy_s)`` and
``("stop",)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import struct

import numpy as np

from ..compression import CompressionSpec, Message
from ..config import dump_section, parse_section

HEADER = struct.Struct(">Q")  # the frame's length
JSON_LENGTH = struct.Struct(">I")
INDEX = struct.Struct(">I")
MAGIC = b"ASHLSIM-EMULATOR/2\n"
NONCE_BYTES = 32
MAC_BYTES = 32
CHALLENGE_BYTES = len(MAGIC) + NONCE_BYTES  # PS -> worker
REPLY_BYTES = INDEX.size + NONCE_BYTES + MAC_BYTES  # worker -> PS
KEY_ENV = "ASHLSIM_EMULATOR_KEY"  # how a worker gets the run's key: its environment, never argv
SETUP_LIMIT = 64 << 20  # a set-up frame: a scenario, however many per-worker values it lists
MAX_HEADER = 1 << 20  # the JSON part of any frame
DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool")


class Closed(ConnectionError):
    """The other side closed the connection, died, or sent what no ashlsim peer sends."""


class Refused(Closed):
    """The PS closed the connection before its challenge: it was busy; connect again."""


class Impostor(Closed):
    """The peer is not the run's parameter server: it did not prove it holds the key."""


def new_key() -> str:
    """A run's secret, as hex (256 bits)."""
    return secrets.token_hex(32)


def _mac(key: bytes, role: bytes, nonce: bytes, index: int) -> bytes:
    return hmac.new(key, role + b"|" + nonce + INDEX.pack(index), hashlib.sha256).digest()


# ---- the handshake -------------------------------------------------------------------------
def challenge() -> tuple[bytes, bytes]:
    """``(nonce, bytes to send)``: the PS's opening of a handshake."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce, MAGIC + nonce


def check_reply(key: bytes, nonce: bytes, reply: bytes) -> tuple[int, bytes] | None:
    """The worker's ``(index, proof for it)`` if ``reply`` proves it holds ``key``, else None."""
    if len(reply) != REPLY_BYTES:
        return None
    (index,) = INDEX.unpack_from(reply)
    worker_nonce = reply[INDEX.size : INDEX.size + NONCE_BYTES]
    mac = reply[INDEX.size + NONCE_BYTES :]
    if not hmac.compare_digest(mac, _mac(key, b"worker", nonce, index)):
        return None
    return index, _mac(key, b"ps", worker_nonce, index)


def authenticate(sock: socket.socket, key: bytes, index: int) -> None:
    """The worker's side of the handshake (a blocking socket with a timeout): answer the PS's
    challenge, then check that the PS holds the key too. Raises ``Closed`` otherwise."""
    try:
        opening = _exactly(sock, CHALLENGE_BYTES)
    except Closed as exc:
        raise Refused(str(exc)) from None
    if opening[: len(MAGIC)] != MAGIC:
        raise Impostor("not an ashlsim parameter server")
    nonce = opening[len(MAGIC) :]
    mine = secrets.token_bytes(NONCE_BYTES)
    sock.sendall(INDEX.pack(index) + mine + _mac(key, b"worker", nonce, index))
    proof = _exactly(sock, MAC_BYTES)
    if not hmac.compare_digest(proof, _mac(key, b"ps", mine, index)):
        raise Impostor("the parameter server did not prove it holds the run's key")


# ---- frames --------------------------------------------------------------------------------
def frame_limit(model_values: int, itemsize: int) -> int:
    """The largest frame a run's work or push needs: the parameters or a delta (values, and
    indices for a sparse one), one step's batches, and the header; with a margin."""
    return MAX_HEADER + 2 * model_values * (itemsize + 8) + (8 << 20)


def encode(message: tuple) -> bytes:
    kind = message[0]
    if kind not in _ENCODE:
        raise ValueError(f"no such message: {kind!r}")
    fields, arrays = _ENCODE[kind](message)
    header = json.dumps(
        {
            "kind": kind,
            "fields": fields,
            "arrays": [[name, a.dtype.name, list(a.shape)] for name, a in arrays.items()],
        },
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    body = [JSON_LENGTH.pack(len(header)), header]
    body += [np.ascontiguousarray(a).tobytes() for a in arrays.values()]
    payload = b"".join(body)
    return HEADER.pack(len(payload)) + payload


def decode(payload: bytes) -> tuple:
    """The message a frame's payload holds; ``Closed`` if it is not one we send."""
    try:
        (length,) = JSON_LENGTH.unpack_from(payload)
        if length > MAX_HEADER or JSON_LENGTH.size + length > len(payload):
            raise ValueError("header length")
        header = json.loads(payload[JSON_LENGTH.size : JSON_LENGTH.size + length])
        kind, fields, specs = header["kind"], header["fields"], header["arrays"]
        if kind not in _DECODE or not isinstance(fields, dict) or not isinstance(specs, list):
            raise ValueError("kind")
        arrays, at = {}, JSON_LENGTH.size + length
        for name, dtype, shape in specs:
            if dtype not in DTYPES or not isinstance(shape, list) or len(shape) > 2:
                raise ValueError("array")
            if not all(isinstance(n, int) and n >= 0 for n in shape):
                raise ValueError("shape")
            size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if at + size > len(payload):
                raise ValueError("array bytes")
            data = np.frombuffer(payload, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                 offset=at)  # fmt: skip
            arrays[str(name)] = data.reshape(shape).copy()
            at += size
        if at != len(payload):
            raise ValueError("trailing bytes")
        return _DECODE[kind](fields, arrays)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, OverflowError) as exc:
        raise Closed(f"a malformed message ({exc})") from None


def _setup(message):
    _, scenario, seed = message
    return {"scenario": scenario, "seed": int(seed)}, {}


def _work(message):
    job = dict(message[1])
    arrays = {}
    if job.pop("params") is not None:
        arrays["params"] = message[1]["params"]
    batches = job.pop("batches")
    if batches is not None:
        arrays["batches"] = np.stack(batches).astype(np.int64, copy=False)
    compression = job.pop("compression")
    if compression is not None:
        spec, ratio = compression
        job["compression"] = {"spec": dump_section(spec), "ratio": ratio}
    return job, arrays


def _push(message):
    _, seq, push, math_s, busy_s = message
    fields = {"seq": seq, "math_s": math_s, "busy_s": busy_s, "size": None}
    arrays = {}
    if push is not None:
        fields["size"] = int(push.size)
        arrays["values"] = push.values
        if push.indices is not None:
            arrays["indices"] = push.indices
    return fields, arrays


_ENCODE = {
    "setup": _setup,
    "ready": lambda m: ({"index": int(m[1]), "pid": int(m[2])}, {}),
    "work": _work,
    "push": _push,
    "stop": lambda m: ({}, {}),
}


def _work_back(fields, arrays):
    compression = fields.get("compression")
    if compression is not None:
        spec = parse_section(CompressionSpec, compression["spec"], "compression")
        compression = (spec, None if compression["ratio"] is None else float(compression["ratio"]))
    batches = arrays.get("batches")
    job = {
        "seq": int(fields["seq"]),
        "params": arrays.get("params"),
        "batches": None if batches is None else list(batches),
        "lr": float(fields["lr"]),
        "compute_s": float(fields["compute_s"]),
        "accumulate": bool(fields["accumulate"]),
        "keep_local": bool(fields["keep_local"]),
        "reset": bool(fields["reset"]),
        "compression": compression,
    }
    return ("work", job)


def _push_back(fields, arrays):
    push = None
    if fields["size"] is not None:
        push = Message(arrays["values"], arrays.get("indices"), int(fields["size"]))
    return ("push", int(fields["seq"]), push, float(fields["math_s"]), float(fields["busy_s"]))


_DECODE = {
    "setup": lambda f, a: ("setup", dict(f["scenario"]), int(f["seed"])),
    "ready": lambda f, a: ("ready", int(f["index"]), int(f["pid"])),
    "work": _work_back,
    "push": _push_back,
    "stop": lambda f, a: ("stop",),
}


def send(sock: socket.socket, message) -> int:
    """Send one message; returns the bytes written."""
    frame = encode(message)
    sock.sendall(frame)
    return len(frame)


def recv(sock: socket.socket, limit: int):
    """Receive one message (blocking; the socket's timeout is the deadline)."""
    return decode(_exactly(sock, _length(_exactly(sock, HEADER.size), limit)))


def _length(header, limit: int) -> int:
    """The payload length a frame's header gives; longer than ``limit`` is refused unread."""
    (length,) = HEADER.unpack_from(header)
    if length > limit or length < JSON_LENGTH.size:
        raise Closed(f"a frame of {length} bytes (at most {limit}): not an ashlsim peer")
    return length


def _exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        try:
            k = sock.recv_into(view[got:], n - got)
        except TimeoutError:
            raise Closed("no answer in time") from None
        if k == 0:
            raise Closed("connection closed")
        got += k
    return bytes(buf)


class Reader:
    """Frames from an authenticated socket, as bytes arrive (the PS reads many sockets, each
    when it is readable). ``limit``: the largest frame accepted. ``partial_since``: when the
    frame now half-received began to arrive (None: none is), for the PS's stall check."""

    def __init__(self, sock: socket.socket, limit: int, clock=None):
        self.sock, self.limit, self.clock = sock, limit, clock
        self._buf = bytearray()
        self.bytes = 0  # received so far
        self.partial_since: float | None = None

    def feed(self) -> list:
        """Read what is there; return the messages completed, each with its frame's size in
        bytes. Raises ``Closed`` at EOF or on a frame no ashlsim worker sends."""
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
            end = HEADER.size + _length(buf, self.limit)
            if len(buf) < end:
                break
            out.append((decode(bytes(buf[HEADER.size : end])), end))
            del buf[:end]
        if not buf:
            self.partial_since = None
        elif self.partial_since is None or out:
            self.partial_since = self.clock() if self.clock is not None else 0.0
        return out


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port), the port within 0-65535."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT (a port from 0 to 65535)")
    return host.strip("[]"), int(port)
