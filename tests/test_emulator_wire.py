"""The emulator's wire is hostile until proven otherwise (docs/DESIGN.md section 10): nothing that
arrives is parsed before the peer proved it holds the run's key, both ways, and nothing that
arrives can execute code; a stranger costs a connection slot, never a stall, a crash or a
wrong result."""

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from test_emulator import scenario

from ashlsim.compression import CompressionSpec, Message
from ashlsim.emulator import Emulation, wire
from ashlsim.emulator import ps as ps_module
from ashlsim.emulator.ps import EmulationError


class Payload:
    """A pickle that, if ever loaded, writes a file: proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def evil_frame(path) -> bytes:
    payload = pickle.dumps(Payload(path), protocol=5)
    return len(payload).to_bytes(8, "big") + payload


def connect(address: str) -> socket.socket:
    host, port = wire.parse_address(address)
    return socket.create_connection((host, port), timeout=5)


# ---- the codec ----------------------------------------------------------------------------
def test_every_message_goes_through_the_codec_and_back():
    spec = CompressionSpec(name="topk", ratio=0.1, error_feedback=True, scope="layer")
    params = np.arange(6, dtype=np.float32)
    job = {"seq": 3, "params": params, "batches": [np.arange(4), np.arange(4, 8)], "lr": 0.05,
           "compute_s": 0.01, "accumulate": False, "keep_local": True, "reset": True,
           "compression": (spec, 0.25)}  # fmt: skip
    sparse = Message(np.array([1.5, -2.0], np.float32), np.array([1, 4]), 6)
    for message in [
        ("setup", {"name": "x", "cluster": {"workers": 2}}, 7),
        ("ready", 1, 1234),
        ("stop",),
        ("push", 3, sparse, 0.001, 0.01),
        ("push", 4, Message(params, None, 6), 0.001, 0.01),
        ("push", 5, None, 0.0, 0.01),
        ("work", {**job, "params": None, "batches": None, "compression": None}),
    ]:
        back = wire.decode(wire.encode(message)[wire.HEADER.size :])
        assert back[0] == message[0]
        if message[0] == "push" and message[2] is not None:
            np.testing.assert_array_equal(back[2].decompress(), message[2].decompress())
            assert back[1:2] + back[3:] == message[1:2] + message[3:]
        elif message[0] != "work":
            assert back == message
    back = wire.decode(wire.encode(("work", job))[wire.HEADER.size :])[1]
    np.testing.assert_array_equal(back["params"], params)
    assert [b.tolist() for b in back["batches"]] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert back["compression"] == (spec, 0.25)
    assert {k: back[k] for k in ("seq", "lr", "reset", "keep_local")} == {
        "seq": 3, "lr": 0.05, "reset": True, "keep_local": True}  # fmt: skip


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\x00\x00\x05{}}}}",
        pickle.dumps(("push", 1, None, 0.0, 0.0)),
        b"\x00\x00\x00\x20" + b'{"kind":"push","fields":{},"arrays":[]}'[:32],
        b"\x00\x00\x00\x31" + b'{"kind":"nope","fields":{},"arrays":[["a","O",[1]]]}',
        b"\x00\x00\x00\x3a" + b'{"kind":"stop","fields":{},"arrays":[["a","float32",[9]]]}',
        b"\x00\x00\x00\x0f" + b'{"kind":"stop"}' + b"\x00",
    ],
)
def test_a_malformed_frame_is_refused_never_parsed_into_objects(payload):
    with pytest.raises(wire.Closed):
        wire.decode(payload)


def test_random_bytes_only_ever_raise_closed():
    rng = np.random.default_rng(0)
    good = wire.encode(("push", 1, Message(np.ones(5, np.float32), None, 5), 0.1, 0.2))[8:]
    for _ in range(2000):
        data = bytearray(good)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
            data[at] = int(rng.integers(0, 256))
        with contextlib.suppress(wire.Closed):  # and nothing else
            wire.decode(bytes(data))


def test_a_frame_longer_than_the_limit_is_refused_before_it_is_read():
    a, b = socket.socketpair()
    with a, b:
        a.sendall((2**31).to_bytes(8, "big"))  # 2 GiB announced, nothing sent
        b.settimeout(5)
        started = time.monotonic()
        with pytest.raises(wire.Closed, match="at most"):
            wire.recv(b, limit=1 << 20)
        assert time.monotonic() - started < 1.0


def test_a_reader_knows_when_a_frame_stopped_half_way():
    a, b = socket.socketpair()
    with a, b:
        b.setblocking(False)
        clock = iter([1.0, 2.0, 3.0]).__next__
        reader = wire.Reader(b, 1 << 20, clock)
        frame = wire.encode(("stop",))
        a.sendall(frame[:5])
        time.sleep(0.05)
        assert reader.feed() == [] and reader.partial_since == 1.0
        a.sendall(frame[5:])
        time.sleep(0.05)
        assert reader.feed()[0][0] == ("stop",) and reader.partial_since is None


# ---- the handshake ---------------------------------------------------------------------------
def test_the_handshake_proves_the_key_both_ways_without_sending_it():
    key = bytes.fromhex(wire.new_key())
    nonce, opening = wire.challenge()
    ps_side, worker_side = socket.socketpair()
    with ps_side, worker_side:
        worker_side.settimeout(5)
        ps_side.sendall(opening)
        done = threading.Thread(target=wire.authenticate, args=(worker_side, key, 2))
        done.start()
        reply = ps_side.recv(wire.REPLY_BYTES, socket.MSG_WAITALL)
        index, proof = wire.check_reply(key, nonce, reply)
        assert index == 2 and key not in reply and key.hex().encode() not in reply
        ps_side.sendall(proof)
        done.join(5)
        assert not done.is_alive()
    assert wire.check_reply(bytes(32), nonce, reply) is None  # another key: refused
    assert wire.check_reply(key, bytes(32), reply) is None  # a replayed reply: refused


def test_a_worker_refuses_a_ps_that_cannot_prove_the_key(tmp_path):
    """A fake PS: the magic and a nonce, then a malicious pickle where its proof should be.
    The worker sends no key, runs nothing, and exits."""
    marker = tmp_path / "pwned"
    listener = socket.create_server(("127.0.0.1", 0))
    received = []

    def fake_ps():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(wire.MAGIC + os.urandom(wire.NONCE_BYTES))
            received.append(conn.recv(4096))
            conn.sendall(evil_frame(marker))
            time.sleep(0.5)

    thread = threading.Thread(target=fake_ps)
    thread.start()
    key = wire.new_key()
    port = listener.getsockname()[1]
    worker = subprocess.run(
        [sys.executable, "-m", "ashlsim.emulator.worker", f"127.0.0.1:{port}", "--index", "0"],
        env={**os.environ, wire.KEY_ENV: key}, capture_output=True, timeout=60,
    )  # fmt: skip
    thread.join(5)
    listener.close()
    assert not marker.exists()
    assert received and key.encode() not in received[0]
    assert bytes.fromhex(key) not in received[0]
    assert b"Traceback" not in worker.stderr


def test_a_worker_needs_the_key_in_its_environment():
    out = subprocess.run(
        [sys.executable, "-m", "ashlsim.emulator.worker", "127.0.0.1:9", "--index", "0"],
        env={k: v for k, v in os.environ.items() if k != wire.KEY_ENV},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and wire.KEY_ENV in out.stderr and "Traceback" not in out.stderr


# ---- the parameter server -------------------------------------------------------------------
def test_strangers_run_no_code_and_stall_nothing(tmp_path):
    """Before the workers connect: a malicious pickle with no key, a 2 GiB header, garbage, and
    66 idle connections. The run starts without waiting on them, nothing runs, and the run is
    the one it would be (every push applied, each worker working)."""
    marker = tmp_path / "pwned"
    s = scenario(strategy={"name": "asp"}, stop={"time_s": 1.5})
    emulation = Emulation(s, seed=0)
    strangers = []

    def idle():  # while the PS starts its workers (the backlog holds only 64 waiting)
        for _ in range(66):
            with contextlib.suppress(OSError):
                strangers.append(connect(emulation.address))

    try:
        for frame in (evil_frame(marker), (2**31).to_bytes(8, "big"), b"\x00" * 100):
            sock = connect(emulation.address)
            sock.sendall(frame)
            strangers.append(sock)
        thread = threading.Thread(target=idle)
        thread.start()
        started = time.monotonic()
        result = emulation.run()
        elapsed = time.monotonic() - started
        thread.join(10)
    finally:
        emulation.close()
        for sock in strangers:
            sock.close()
    assert not marker.exists()
    # the pickle and the garbage failed their proof; 66 idle ones overflowed the 64 slots
    assert emulation.refused >= 4
    assert elapsed < ps_module.STARTUP_TIMEOUT_S / 4
    assert result.pushes_sent == result.pushes_applied + result.pushes_pending > 30
    assert (result.workers["iterations"] > 3).all()


def test_a_stranger_mid_run_is_refused_and_changes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    s = scenario(strategy={"name": "bsp"}, stop={"time_s": 1.5})
    emulation = Emulation(s, seed=0)
    try:
        emulation.start_workers()
        stranger = connect(emulation.address)
        stranger.sendall(evil_frame(marker))
        result = emulation.run()
        stranger.close()
    finally:
        emulation.close()
    assert not marker.exists() and emulation.refused == 1
    assert result.pushes_sent == result.pushes_applied + result.pushes_pending


def test_a_worker_that_stops_half_way_through_a_message_fails_the_run(monkeypatch):
    """We play worker 0 by hand: the handshake with the key, the set-up, ready, then half a
    push. The run fails with the worker named; it does not go on with fewer updates."""
    monkeypatch.setattr(ps_module, "STALL_S", 0.5)
    s = scenario(cluster={"workers": 1, "speed": [1000]}, strategy={"name": "asp"},
                 stop={"time_s": 30.0})  # fmt: skip
    emulation = Emulation(s, seed=0, spawn=False, announce=lambda line: None)
    sock = connect(emulation.address)

    def play():
        wire.authenticate(sock, bytes.fromhex(emulation.key), 0)
        assert wire.recv(sock, wire.SETUP_LIMIT)[0] == "setup"
        wire.send(sock, ("ready", 0, os.getpid()))
        assert wire.recv(sock, 1 << 26)[0] == "work"
        frame = wire.encode(("push", 0, None, 0.0, 0.001))
        sock.sendall(frame[: len(frame) // 2])

    thread = threading.Thread(target=play)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(EmulationError, match="worker 0 stopped half-way"):
            emulation.run()
    finally:
        emulation.close()
        sock.close()
        thread.join(5)
    assert time.monotonic() - started < 10.0
