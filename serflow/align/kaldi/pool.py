"""Persistent worker processes, one :class:`~.worker.ShardWorker` each, driven by method calls.

Why not ``concurrent.futures``: a pool hands a task to whichever process is free, but our tasks must
reach the process holding the utterances' features and graphs. Each worker here is a child process
with a socket; a call is broadcast to all of them and the answers come back in worker order. With one
job the worker lives in the calling process and nothing is pickled.

Why plain child processes (``python -m serflow.align.kaldi._child``) rather than ``multiprocessing``'s
start methods: ``fork`` can deadlock a caller that holds threads (Arrow, BLAS), and ``spawn`` /
``forkserver`` re-import the caller's main module in every child, which re-runs a script without a
``__main__`` guard, Snakemake's script directive included. A child that starts from our own module
has neither problem; it speaks ``multiprocessing.connection`` over an inherited socket.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .worker import ShardWorker, UttJob

WorkerArgs = tuple[dict[str, tuple[tuple[str, ...], ...]], list[list[UttJob]], int]


class WorkerError(RuntimeError):
    """A worker raised or died; the message carries its traceback."""


def serve(conn: Connection) -> None:
    """Worker main loop: receive the shard, build it, then answer ``(method, args)`` messages until ``None``."""
    try:
        worker = ShardWorker(*conn.recv())
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent went away without saying goodbye
            return
        if message is None:
            return
        method, call_args = message
        try:
            conn.send(("ok", getattr(worker, method)(*call_args)))
        except BaseException:
            conn.send(("error", traceback.format_exc()))


def _child_env() -> dict[str, str]:
    """The caller's environment, with this package importable and BLAS kept to one thread per worker."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


class WorkerPool:
    """``len(shards)`` workers; ``processes=False`` keeps a single worker in this process."""

    def __init__(self, shards: Sequence[WorkerArgs], processes: bool) -> None:
        self._local: list[ShardWorker] = []
        self._conns: list[Connection] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        if not processes:
            self._local = [ShardWorker(*args) for args in shards]
            return
        try:
            for args in shards:
                self._start(args)
            self._collect()
        except BaseException:
            self.close()
            raise

    def _start(self, args: WorkerArgs) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            proc = subprocess.Popen(
                [sys.executable, "-m", "serflow.align.kaldi._child", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=_child_env(),
            )
            conn = Connection(ours.detach())
        self._procs.append(proc)
        self._conns.append(conn)
        conn.send(args)

    def call(self, method: str, *args: Any) -> list[Any]:
        """Run ``method(*args)`` on every worker at once; results in worker order."""
        if self._local:
            return [getattr(worker, method)(*args) for worker in self._local]
        for conn in self._conns:
            conn.send((method, args))
        return self._collect()

    def _collect(self) -> list[Any]:
        results, errors = [], []
        for conn, proc in zip(self._conns, self._procs, strict=True):
            try:
                status, value = conn.recv()
            except (EOFError, OSError):
                status, value = "error", f"worker process {proc.pid} died (exit code {proc.poll()})"
            if status == "error":
                errors.append(value)
            results.append(value)
        if errors:
            raise WorkerError("alignment worker failed:\n" + "\n".join(errors))
        return results

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):  # the worker may already be gone
                conn.send(None)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs, self._local = [], [], []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
