"""The emulator's parameter server: the simulator's engine, driven by the wall clock and by
messages from real worker processes (docs/DESIGN.md section 10).

``Emulation`` is an ``engine.Simulation`` whose SimPy environment never runs ahead of the wall
clock: the driver steps an event only once its time has come, and otherwise waits on the worker
sockets. A message that arrives is handled as an event at the time it arrived. So the strategy,
the PS's exactly-once books, faults, stragglers and the observer are the simulator's own code,
unchanged, while each worker is a ``RemoteWorker``: a proxy that sends the real process its work
and waits for its real push.

What is real: the worker processes, their NumPy SGD (padded to the compute time the scenario
samples, so an overrun shows), compression, serialization, TCP, the PS applying every update
and evaluating the model, the operating system's scheduling of it all. What is shaped: each
transfer is held until the scenario's link and the PS card's fair share would have delivered
it (the simulator's fluid max-min model, run in real time; on one machine TCP itself has no
bandwidth to speak of), *then* the real bytes move, so their real cost adds to it.
"""

from __future__ import annotations

import math
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import simpy

from ..cluster.worker import Worker, offload_overhead
from ..engine import Simulation
from ..errors import ScenarioError
from ..simport import SimPort
from . import wire

STARTUP_TIMEOUT_S = 120.0  # every worker connected and ready (imports, data) within this
POLL_S = 0.002  # at most this long between two looks at the sockets while events are due
HANDSHAKE_S = 5.0  # a connection proves it holds the run's key within this, or is closed
MAX_PENDING = 64  # connections in their handshake at once; a new one closes the oldest
STALL_S = 10.0  # a worker that stops half-way through a message for this long has failed


class Pending:
    """A connection in its handshake: the nonce sent, the reply so far, the deadline."""

    __slots__ = ("conn", "nonce", "reply", "deadline")

    def __init__(self, conn, nonce: bytes, deadline: float):
        self.conn, self.nonce, self.reply, self.deadline = conn, nonce, b"", deadline


class EmulationError(RuntimeError):
    """A worker process failed (its last lines of output are in the message)."""


class EmuPort(SimPort):
    """The strategy port of an emulation: the simulator's, plus telling the remote workers what
    changed for them (their compressor; an optimizer reset) with their next work."""

    def apply(self, updates, weight: float = 1.0) -> None:
        """Apply, and record how long the PS took (a cost the simulator leaves out)."""
        started = time.perf_counter()
        super().apply(updates, weight)
        sim = self._sim
        sim.applications.append((sim.env.now, len(updates), time.perf_counter() - started))

    def set_compression(self, worker: int, spec, ratio=None) -> None:
        super().set_compression(worker, spec, ratio)
        remote = self._sim.workers[worker]
        remote.compression = remote.wire_compression = (spec, ratio)


class RemoteWorker(Worker):
    """The PS's proxy of one worker process: the simulator's worker, whose computations are
    done by the real process (it is its own ``offload``: ``send`` the work, ``received`` its
    push) on a machine that is a real one (``crash`` kills it, ``restart`` starts a new one).
    The iterations around them (gate, pull, push) are the simulator's own
    (``cluster.worker.Iterations``)."""

    def __init__(self, *args):
        self.compression = None  # (spec, ratio) of its compressor now
        self.wire_compression = None  # ... to send with the next work, when it changed
        self.reset_pending = False
        self.life = 0  # bumped by every crash: messages of an earlier life are ignored
        self.conn: socket.socket | None = None
        self.reader: wire.Reader | None = None
        self.os_process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.arrived: simpy.Event | None = None  # the push we wait for
        self.back: simpy.Event | None = None  # a restarted process is ready
        self.job: tuple | None = None  # (event, drawn compute_s, serialize_s, bytes sent)
        super().__init__(*args)
        self.offload = self

    # ---- what the strategy changes ------------------------------------------------------------
    def reset_optimizer(self) -> None:
        super().reset_optimizer()
        self.reset_pending = True

    # ---- the machine --------------------------------------------------------------------------
    def crash(self, recovered) -> bool:
        if not super().crash(recovered):
            return False
        self.life += 1
        self.arrived = None
        self.sim.disconnect(self, kill=True)
        return True

    def restart(self):
        """Start a new process; the event succeeds when it has connected and is ready."""
        self.back = self.sim.env.event()
        self.sim.spawn(self.index)
        return self.back

    def reconnected(self) -> None:
        """A new process is ready: fresh optimizer, no residual, no local model; it needs its
        compressor."""
        self.wire_compression = self.compression
        self.reset_pending = False

    # ---- the computations (``Worker.offload``) ------------------------------------------------
    def send(self, iteration, now: float) -> simpy.Event:
        """Send the work of ``iteration`` (its pulled parameters, the batches and learning
        rate as of now, the compute time drawn) to the process; the event succeeds when its
        push arrives."""
        sim, steps = self.sim, iteration.steps
        compute_s = self.compute_time(steps)
        job = {
            "seq": iteration.seq,
            "params": iteration.params,
            "batches": [self.sampler.next() for _ in range(steps)] if sim.model.trains else None,
            "lr": sim.trainer.learning_rate(sim.schedule_clock()),
            "compute_s": compute_s,
            "accumulate": sim.strategy.accumulates,
            "keep_local": iteration.cached,
            "reset": self.reset_pending,
            "compression": self.wire_compression,
        }
        self.reset_pending, self.wire_compression = False, None
        self.arrived = arrived = sim.env.event()
        sent_at = sim.clock()
        sent_bytes = sim.send(self, ("work", job))
        self.job = (arrived, compute_s, sim.clock() - sent_at, sent_bytes)
        return arrived

    def received(self, iteration, now: float) -> tuple:
        """The push's message and the process's busy seconds; the costs of the iteration go
        in the emulation's table."""
        arrived, compute_s, serialize_s, sent_bytes = self.job
        message, math_s, busy_s, got_bytes = arrived.value
        overhead = offload_overhead(iteration.end, now, busy_s)
        self.sim.costs.append((self.index, iteration.seq, compute_s, math_s, busy_s, overhead,
                               serialize_s, sent_bytes, got_bytes))  # fmt: skip
        self.job = None
        return message, busy_s


class Emulation(Simulation):
    """One run of a scenario on real processes (module docstring). ``listen``: the address
    workers connect to (``host:port``, port 0: any free one). ``spawn``: start the N worker
    processes here; False: wait for N workers started by hand, e.g. on other machines
    (``python -m ashlsim.emulator.worker HOST:PORT --index I`` with the run's key in
    ``ASHLSIM_EMULATOR_KEY``). Connections are accepted concurrently: each must prove it holds
    the run's key within ``HANDSHAKE_S`` (``wire``), so a stranger costs a connection slot,
    never a stall, a crash or a wrong result."""

    engine = "emulator"
    models_software = False  # its software costs are real
    defers_maths = False  # every push is applied, in real time, when it arrives
    worker_class = RemoteWorker
    port_class = EmuPort

    def __init__(
        self,
        scenario,
        seed: int | None = None,
        events: bool | None = None,
        listen: str = "127.0.0.1:0",
        spawn: bool = True,
        announce=None,
    ):
        if scenario.stop.time_s is None:
            raise ScenarioError(
                "stop.time_s", None, "a time limit in seconds: an emulation runs in real time"
            )
        if not spawn and scenario.faults and any(f.kind == "crash" for f in scenario.faults):
            raise ScenarioError(
                "faults", "crash", "no crash when the workers are started by hand (spawn=False)"
            )
        super().__init__(scenario, seed, events)
        self.costs: list[tuple] = []  # one row per iteration (``Result.tables['emulation']``)
        # (time_s, pushes, seconds) of each application (``EmuPort.apply``); not ``apply_s``,
        # the modelled cost the simulator's workers read
        self.applications: list[tuple] = []
        self.key = wire.new_key()  # the run's secret (hex); workers prove they hold it
        self._pending: dict[socket.socket, Pending] = {}  # connections in their handshake
        self.refused = 0  # connections that did not prove they hold the key
        self.spawning = spawn
        self.announce = announce  # fn(line): how to start the workers by hand (spawn=False)
        self._listener = _listen(listen)  # first: a bad address leaves nothing behind
        # each worker's output, in an unnamed file (nothing to clean up, even after SIGKILL)
        self._logs: dict[int, object] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        host, port = self._listener.getsockname()[:2]
        self.address = f"{host}:{port}"
        self.t0 = time.perf_counter()
        self.started = self.closed = False

    # ---- time ---------------------------------------------------------------------------------
    def clock(self) -> float:
        """Measured seconds since the run started."""
        return time.perf_counter() - self.t0

    # ---- processes and connections ------------------------------------------------------------
    def spawn(self, index: int) -> None:
        """Start worker process ``index`` (it connects back to us)."""
        worker = self.workers[index]
        log = self._logs.get(index)
        if log is None:  # one file per worker, kept for the tail of its output
            log = self._logs[index] = tempfile.TemporaryFile()  # noqa: SIM115
        # the key goes in the child's environment, which other users cannot read (argv they can)
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{wire.KEY_ENV: self.key})
        command = [sys.executable, "-m", "ashlsim.emulator.worker", self.address]
        command += ["--index", str(index), "--parent", str(os.getpid())]
        worker.os_process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )

    def start_workers(self) -> None:
        """Start (or wait for) every worker; return when all are connected and ready. The
        clock starts then (once: ``run`` calls it if nobody did)."""
        if self.started:
            return
        for index in range(self.n_workers):
            if self.spawning:
                self.spawn(index)
            elif self.announce is not None:
                self.announce(
                    f"start worker {index}: {wire.KEY_ENV}={self.key} python -m "
                    f"ashlsim.emulator.worker {self.address} --index {index}"
                )
        deadline = time.monotonic() + (STARTUP_TIMEOUT_S if self.spawning else 3600.0)
        while not all(w.conn is not None and w.back is None for w in self.workers):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [w.index for w in self.workers if w.conn is None or w.back is not None]
                raise EmulationError(
                    f"workers {missing} did not start within {STARTUP_TIMEOUT_S:.0f} s"
                    + self._tails(missing)
                )
            self._check_alive()
            for key, _ in self._selector.select(min(left, 0.2)):
                self._readable(key, starting=True)
            self._check_deadlines()
        self.t0 = time.perf_counter()
        self.started = True

    def _accept(self) -> None:
        """Open a handshake with a new connection (never blocks: its reply is read when it
        arrives, ``_handshake``)."""
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self._pending) >= MAX_PENDING:  # make room: the oldest goes (a worker of ours
            oldest = min(self._pending.values(), key=lambda p: p.deadline)  # answers in ms)
            self._end_handshake(oldest)
            oldest.conn.close()
            self.refused += 1
        conn.setblocking(False)
        nonce, opening = wire.challenge()
        try:
            if conn.send(opening) != len(opening):
                raise OSError("short send")
        except OSError:
            conn.close()
            return
        pending = Pending(conn, nonce, time.monotonic() + HANDSHAKE_S)
        self._pending[conn] = pending
        self._selector.register(conn, selectors.EVENT_READ, pending)

    def _handshake(self, pending: Pending) -> None:
        """Read a handshake's reply; once whole, admit the worker it proves to be, or close."""
        conn = pending.conn
        try:
            chunk = conn.recv(wire.REPLY_BYTES - len(pending.reply))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        pending.reply += chunk
        if chunk and len(pending.reply) < wire.REPLY_BYTES:
            return
        self._end_handshake(pending)
        proved = wire.check_reply(bytes.fromhex(self.key), pending.nonce, pending.reply)
        index = None if proved is None else proved[0]
        if index is None or not 0 <= index < self.n_workers or self.workers[index].conn:
            conn.close()
            self.refused += 1
            return
        conn.setblocking(True)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        worker = self.workers[index]
        try:
            conn.sendall(proved[1])  # our proof: the worker checks the PS too
            wire.send(conn, ("setup", self.scenario.to_dict(), self.seed))
        except OSError:
            conn.close()
            return
        limit = wire.frame_limit(self.model.size, self.model.dtype.itemsize)
        worker.conn, worker.reader = conn, wire.Reader(conn, limit, time.monotonic)
        worker.back = worker.back or self.env.event()  # ready once it says so
        self._selector.register(conn, selectors.EVENT_READ, (index, worker.life))

    def _end_handshake(self, pending: Pending) -> None:
        self._selector.unregister(pending.conn)
        del self._pending[pending.conn]

    def _check_deadlines(self) -> None:
        """Close the connections that did not prove themselves in time; fail on a worker that
        stopped half-way through a message."""
        now = time.monotonic()
        for pending in [p for p in self._pending.values() if p.deadline < now]:
            self._end_handshake(pending)
            pending.conn.close()
            self.refused += 1
        for worker in self.workers:
            reader = worker.reader
            since = None if reader is None else reader.partial_since
            if since is not None and now - since > STALL_S:
                raise EmulationError(
                    f"worker {worker.index} stopped half-way through a message for "
                    f"{STALL_S:.0f} s" + self._tails([worker.index])
                )

    def _readable(self, key, starting: bool = False) -> None:
        if key.data is None:
            self._accept()
            return
        if isinstance(key.data, Pending):
            self._handshake(key.data)
            return
        index, life = key.data
        worker = self.workers[index]
        try:
            messages = worker.reader.feed()  # (message, bytes) pairs
        except wire.Closed:
            if life == worker.life and not self.closed:
                raise EmulationError(
                    f"worker {index} closed its connection" + self._tails([index])
                ) from None
            return
        for message, nbytes in messages:
            if starting:
                self._handle(index, life, message, nbytes)
            else:  # an event now: the engine handles it in time order
                delay = max(self.clock() - self.env.now, 0.0)
                self.env.timeout(delay).callbacks.append(
                    lambda _, m=message, b=nbytes: self._handle(index, life, m, b)
                )

    def _handle(self, index: int, life: int, message, nbytes: int) -> None:
        worker = self.workers[index]
        if life != worker.life:  # sent before a crash: lost with it
            return
        kind = message[0]
        if kind == "ready" and message[1] == index:
            worker.pid = message[2]
            back, worker.back = worker.back, None
            if worker.life:  # a restart: it needs its compressor again
                worker.reconnected()
            if back is not None and not back.triggered:
                back.succeed()
        elif kind == "push" and worker.arrived is not None:
            _, seq, push, math_s, busy_s = message
            arrived, worker.arrived = worker.arrived, None
            arrived.succeed((push, math_s, busy_s, nbytes))

    def send(self, worker: RemoteWorker, message) -> int:
        try:
            return wire.send(worker.conn, message)
        except OSError:
            raise EmulationError(
                f"worker {worker.index} is gone" + self._tails([worker.index])
            ) from None

    def disconnect(self, worker: RemoteWorker, kill: bool = False) -> None:
        """Close ``worker``'s connection (and kill its process)."""
        if worker.conn is not None:
            self._selector.unregister(worker.conn)
            worker.conn.close()
            worker.conn = worker.reader = None
        process = worker.os_process
        if kill and process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _check_alive(self) -> None:
        for worker in self.workers:
            process = worker.os_process
            if process is not None and worker.conn is None and process.poll() is not None:
                raise EmulationError(
                    f"worker {worker.index} exited with code {process.returncode}"
                    + self._tails([worker.index])
                )

    def _tails(self, indices) -> str:
        lines = []
        for index in indices[:3]:
            log = self._logs.get(index)
            if log is None:
                continue
            log.seek(0)
            text = log.read().decode(errors="replace").strip()
            if text:
                lines.append(f"--- worker {index}:\n" + "\n".join(text.splitlines()[-12:]))
        return ("\n" + "\n".join(lines)) if lines else ""

    def close(self) -> None:
        """Stop every worker, close every socket, leave no process behind (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for worker in self.workers:
            if worker.conn is not None:
                try:
                    worker.conn.settimeout(0.5)
                    wire.send(worker.conn, ("stop",))
                except OSError:
                    pass
        deadline = time.monotonic() + 3.0
        for worker in self.workers:
            process = worker.os_process
            if process is not None:
                try:
                    process.wait(max(deadline - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.disconnect(worker)
        for pending in list(self._pending.values()):
            self._end_handshake(pending)
            pending.conn.close()
        self._selector.close()
        self._listener.close()
        for log in self._logs.values():
            log.close()

    # ---- running ------------------------------------------------------------------------------
    def drive(self) -> None:
        """Step each event when its time has come; in between, wait on the sockets."""
        env, clock, selector = self.env, self.clock, self._selector
        self.stop_event.callbacks.append(simpy.core.StopSimulation.callback)
        polled = clock()
        try:
            while True:
                wait = env.peek() - clock()
                if wait > 0:
                    for key, _ in selector.select(min(wait, 0.2)):
                        self._readable(key)
                    self._check_deadlines()
                    polled = clock()
                    if not math.isfinite(wait):
                        self._check_alive()
                    continue
                env.step()
                if clock() - polled > POLL_S:  # behind: still read what has come
                    for key, _ in selector.select(0):
                        self._readable(key)
                    polled = clock()
        except simpy.core.StopSimulation:
            return

    def run(self):
        self.start_workers()
        result = super().run()
        result.tables["emulation"] = self.cost_table()
        result.tables["server"] = pd.DataFrame(
            self.applications, columns=["time_s", "pushes", "apply_s"]
        )
        return result

    def cost_table(self) -> pd.DataFrame:
        """One row per iteration: the sampled compute time, the real maths, the time the
        worker was busy, and the real overhead around it (measured seconds)."""
        columns = [
            "worker",
            "seq",
            "compute_s",
            "math_s",
            "busy_s",
            "overhead_s",
            "serialize_s",
            "sent_bytes",
            "received_bytes",
        ]
        return pd.DataFrame(self.costs, columns=columns)


def _listen(address: str) -> socket.socket:
    try:
        host, port = wire.parse_address(address)
    except ValueError:
        raise ScenarioError(
            "listen", address, "HOST:PORT, e.g. 127.0.0.1:0 or 0.0.0.0:7070"
        ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ScenarioError(
            "listen", address, f"an address this machine can bind ({exc.strerror})"
        ) from None
    sock.listen(64)
    sock.setblocking(False)  # accept never waits (a connection may be gone by then)
    return sock


def emulate(scenario=None, seed: int | None = None, **options):
    """Run ``scenario`` on real processes (see the module docstring) and return its ``Result``
    (times in measured seconds). Options: ``events``, ``listen``, ``spawn``, ``progress``.
    Every process and socket it starts is gone when it returns, also after Ctrl-C or an error."""
    from ..blas import blas_threads
    from ..engine import build

    with blas_threads(None), _terminate_as_interrupt():
        emulation = build(Emulation, scenario, seed, **options)
        try:
            return emulation.run()
        finally:
            emulation.close()


class _terminate_as_interrupt:
    """SIGTERM (a batch system stopping us) cleans up like Ctrl-C (main thread only)."""

    def __enter__(self):
        self.old = None
        if _main_thread():
            self.old = signal.signal(signal.SIGTERM, _raise_interrupt)

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
