"""A worker process of the emulator: real NumPy SGD on the pulled parameters, padded to the
compute time the scenario sampled, then a real push.

It connects to the parameter server (``python -m ashlsim.emulator.worker HOST:PORT --index I``
with the run's key in ``ASHLSIM_EMULATOR_KEY``; the PS starts it so, or a user does on another
machine), proves it holds the key and checks that the PS does too (``wire``), receives the
scenario and seed, builds the same data and model the simulator would (from the seed: no data is shipped),
and then serves *work*: the PS sends the parameters (or "your own model", a cached read), the
mini-batch indices, the learning rate and the compute time; the worker computes the delta,
compresses it with its own compressor and residual, waits out the rest of the compute time
(an overrun, when the maths takes longer, shows in the measured time) and sends it back. What
a worker keeps between iterations is what a real one loses in a crash: its momentum buffer,
its compression residual and its local model (docs/DESIGN.md section 10).

It exits when the PS says stop, when the connection closes (the PS died), and on Linux also
when its parent process dies.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import sys
import time

import numpy as np

from ..blas import blas_threads
from ..compression import CompressionSpec, build_compressor, identity, layer_segments
from ..data import load_dataset
from ..models import build_model
from ..rng import Streams
from ..scenario import Scenario
from ..training import LocalTrainer, Work
from . import wire

HANDSHAKE_S = 30.0  # the PS answers the handshake and sends the set-up within this
CONNECT_S = 60.0  # how long a worker tries again when the PS is too busy to start a handshake


class RemoteTrainee:
    """The worker's learning state: model, data, optimizer buffer, compressor, local model.
    It is also the ``owner`` a ``training.Work`` updates (velocity, optimizer resets)."""

    def __init__(self, scenario: Scenario, seed: int, index: int):
        self.index = index
        self.streams = Streams(seed)
        s = scenario
        self.data = load_dataset(s.data, self.streams.get("data"), np.dtype(s.model.dtype))
        self.model = build_model(s.model, self.data)
        # the largest message it may be sent: the model's values (a virtual one's, timing only)
        self.model_values = self.model.size if self.model is not None else 0
        self.itemsize = np.dtype(s.model.dtype).itemsize
        self.trainer = (
            None if self.model is None else LocalTrainer(self.model, self.data, s.training)
        )
        self.velocity = None
        self.optimizer_resets = 0
        self.last_work = None
        self.compressor = identity()
        self.compress_state = None
        self.local = None  # params + own delta of the last work (cached reads)

    def set_compression(self, spec: CompressionSpec, ratio) -> None:
        model = self.model
        if model is None:  # timing only: nothing is computed, nothing compressed
            return
        self.compressor = build_compressor(
            spec,
            lambda: self.streams.get("compression", self.index),  # the simulator's stream
            ratio,
            layer_segments(spec, model.segments),
        )
        self.compress_state = self.compressor.init(model.size)

    def compute(self, job: dict):
        """The compressed delta of ``job`` (None in timing-only mode)."""
        if job["reset"]:
            self.velocity = None
            self.optimizer_resets += 1
        if job["compression"] is not None:
            self.set_compression(*job["compression"])
        if self.trainer is None:
            return None
        params = job["params"]
        if params is None:  # a cached read: continue from the local model
            if self.local is None:
                raise RuntimeError("a cached read before any pull")
            params = self.local
        work = Work(
            params,
            job["batches"],
            job["lr"],
            self,
            self.velocity,
            self.optimizer_resets,
            self.compressor,
        )
        work.accumulate, work.keep_local = job["accumulate"], job["keep_local"]
        (delta,) = self.trainer.run([work])
        if work.keep_local:
            self.local = work.local_model()
        if self.compress_state is None:
            self.compress_state = self.compressor.init(delta.size)
        message, self.compress_state = self.compressor.compress(delta, self.compress_state)
        return message


def serve(sock: socket.socket, index: int, key: bytes) -> None:
    """The worker's life on one connection: the handshake (each side proves it holds the run's
    key), set-up, then work until told to stop."""
    sock.settimeout(HANDSHAKE_S)
    wire.authenticate(sock, key, index)
    message = wire.recv(sock, wire.SETUP_LIMIT)
    if message[0] != "setup":
        raise wire.Closed(f"expected setup, got {message[0]!r}")
    _, scenario, seed = message
    sock.settimeout(None)
    trainee = RemoteTrainee(Scenario.from_dict(scenario), seed, index)
    limit = wire.frame_limit(trainee.model_values, trainee.itemsize)
    wire.send(sock, ("ready", index, os.getpid()))
    clock = time.perf_counter
    while True:
        message = wire.recv(sock, limit)
        if message[0] != "work":  # "stop"
            return
        job = message[1]
        started = clock()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            push = trainee.compute(job)
        math_s = clock() - started
        # pad the iteration to the sampled compute time; an early message is a stop or EOF
        left = started + job["compute_s"] - clock()
        if left > 0 and select.select([sock], [], [], left)[0]:
            return
        busy_s = clock() - started
        wire.send(sock, ("push", job["seq"], push, math_s, busy_s))


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (belt and braces: a closed
    connection also ends it)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ashlsim.emulator.worker")
    parser.add_argument("address", help="the parameter server's HOST:PORT")
    parser.add_argument("--index", type=int, required=True, help="this worker's index")
    parser.add_argument("--parent", type=int, help="exit when this process id is gone")
    args = parser.parse_args(argv)
    try:
        key = bytes.fromhex(os.environ.get(wire.KEY_ENV, ""))
    except ValueError:
        key = b""
    if len(key) < 16:
        parser.error(f"set {wire.KEY_ENV} to the run's key (the parameter server prints it)")
    if args.parent is not None:
        _die_with_parent()
        if os.getppid() != args.parent:  # the parent died before we could ask
            return 1
    try:
        host, port = wire.parse_address(args.address)
    except ValueError as exc:
        parser.error(str(exc))
    return _connect_and_serve(host, port, args.index, key)


def _connect_and_serve(host: str, port: int, index: int, key: bytes) -> int:
    """Connect to the PS (again while it is too busy to take our handshake, for up to
    ``CONNECT_S``) and serve it; the exit status."""
    deadline = time.monotonic() + CONNECT_S
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with sock, blas_threads(None):
                serve(sock, index, key)
            return 0
        except wire.Refused:  # the PS had no room for our handshake (strangers): again
            if time.monotonic() > deadline:
                return 0
            time.sleep(0.2)
        except wire.Impostor as exc:
            print(f"ashlsim worker {index}: {exc}", file=sys.stderr)
            return 1
        except (wire.Closed, ConnectionError, KeyboardInterrupt):
            return 0  # the PS went away or the user interrupted: nothing left to do


if __name__ == "__main__":
    sys.exit(main())
