"""Processes for the cluster tests: a private redis-server, the Qdrant stand-in, the API
under uvicorn, Celery workers and beat. Every process starts in its own session so a
test can SIGKILL it (and its children) by its id, and `Cluster.close` kills them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Proc:
    """A child process in its own session, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.args = name, args
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a Celery worker and its pool children)."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        self._log.close()

    def children(self) -> list[int]:
        try:
            out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True,
                                 text=True, timeout=5).stdout
        except Exception:
            return []
        return [int(p) for p in out.split()]

    def log(self, tail: int | None = None) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
            return text[-tail:] if tail else text
        except OSError:
            return ""


class Cluster:
    """Owns every process a test module starts."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp, self.env = tmp, env
        self.procs: list[Proc] = []
        self.redis_port = free_port()
        self.redis_dir = tmp / "redis"
        self.redis_dir.mkdir()
        self.redis: Proc | None = None

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None
              ) -> Proc:
        proc = Proc(name, args, {**self.env, **(extra_env or {})}, self.tmp)
        self.procs.append(proc)
        return proc

    # -- redis -------------------------------------------------------------------------
    def start_redis(self) -> Proc:
        """Append-only with fsync on every write, data in a private folder."""
        self.redis = self.start("redis", [
            "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--dir", str(self.redis_dir), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--protected-mode", "no"])
        wait_for(lambda: port_open(self.redis_port), 20, "redis-server")
        return self.redis

    def kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill(signal.SIGKILL)
        wait_for(lambda: not port_open(self.redis_port), 10, "redis to go away")

    # -- workers -----------------------------------------------------------------------
    def start_worker(self, name: str, extra_env: dict[str, str] | None = None) -> Proc:
        return self.start(name, [
            PYTHON, "-m", "celery", "-A", "testkit.worker", "worker", "--pool=prefork",
            "--concurrency=1", "-Q", "ingest,maintenance", "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--loglevel=INFO"], extra_env)

    def start_beat(self) -> Proc:
        return self.start("beat", [PYTHON, "-m", "celery", "-A", "vitrine.worker", "beat",
                                   "-s", str(self.tmp / "beat-schedule"), "--loglevel=INFO"])

    def wait_worker_ready(self, proc: Proc, timeout: float = 60) -> None:
        wait_for(lambda: "ready." in proc.log() or not proc.alive(), timeout,
                 f"{proc.name} to be ready")
        assert proc.alive(), proc.log(6000)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.kill(signal.SIGKILL)


def http_ready(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200
