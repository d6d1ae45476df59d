"""Helpers shared by the benchmarks: machine description, memory, disk, latency summaries."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import psutil

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    """Cores, CPU model, memory and date: benchmark figures mean nothing without them."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "logical_cores": psutil.cpu_count(logical=True),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run_record(module: str, argv: list[str] | None, load_before: tuple[float, ...]) -> dict:
    """What every report starts with: the machine, the load around the run, the command."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    return {"machine": machine_info(),
            "load_before": " ".join(f"{x:.1f}" for x in load_before),
            "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "command": " ".join([f"python -m {module}", *args])}


def rss_bytes(pid: int | None = None) -> int:
    return psutil.Process(pid).memory_info().rss


class Sampler:
    """Calls `sample()` every `interval` seconds in a thread while the `with` block runs,
    and once more as it ends; subclasses keep what they sample (a peak)."""

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class PeakRss(Sampler):
    """Polls the RSS of this process and its children in a thread; keeps the peaks.

    The children matter because a backend may build its index in a child process,
    whose memory the parent's RSS never shows.
    """

    def __init__(self, interval: float = 0.2):
        super().__init__(interval)
        self.peak_self = self.peak_children = 0
        self.peak_self_private = self.peak_children_private = 0  # `private_bytes`
        self._me = psutil.Process()

    def sample(self) -> None:
        self.peak_self = max(self.peak_self, self._me.memory_info().rss)
        self.peak_self_private = max(self.peak_self_private, private_bytes(self._me.pid))
        children = children_private = 0
        for child in self._me.children(recursive=True):
            try:
                children += child.memory_info().rss
                children_private += private_bytes(child.pid)
            except (psutil.Error, OSError):  # exited between listing and reading
                pass
        self.peak_children = max(self.peak_children, children)
        self.peak_children_private = max(self.peak_children_private, children_private)


def private_bytes(pid: int) -> int:
    """A process's resident memory of its own (RssAnon: heap, stacks, anonymous maps):
    its RSS without the pages of mapped files, which the kernel can drop and read again."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakDisk(Sampler):
    """Samples the size of a folder in a thread; keeps the largest."""

    def __init__(self, folder: Path, interval: float = 0.5):
        super().__init__(interval)
        self.folder, self.peak = folder, 0

    def sample(self) -> None:
        self.peak = max(self.peak, dir_size(self.folder))


def dir_size(path: Path) -> int:
    """Bytes allocated on disk under `path` (sparse and preallocated files counted as du does)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def latency_summary(seconds: Sequence[float]) -> dict:
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "max_ms": float(ms.max()), "n": int(ms.size)}


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ truth| / |truth|; `truth` rows are padded with -1."""
    scores = []
    for got, want in zip(found, truth, strict=True):
        want_set = {int(i) for i in want if i >= 0}
        if want_set:
            scores.append(len(want_set.intersection(got)) / len(want_set))
    return float(np.mean(scores)) if scores else float("nan")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*r) for r in rows])


def write_results(name: str, result: dict, markdown: str) -> None:
    """Save a benchmark's figures as bench/results/<name>.json and its report as <name>.md."""
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS_DIR / f"{name}.md").write_text(markdown)
