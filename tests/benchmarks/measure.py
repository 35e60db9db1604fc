"""Shared tools of the benchmarks: child CPU time, medians, an isolated home, one report line.

Not a benchmark itself (no ``bench_`` prefix) and never collected by pytest (no
``test_`` prefix). Absolute times drift on a shared machine, so every target in
issue 7 is a ratio against a baseline measured in the same run, and the runs of
the measured command and of its baseline are interleaved so that noise hits both.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PYTHON = sys.executable
BARE = (PYTHON, "-c", "pass")
STRIPPED_PREFIXES = ("CORTAN_", "OPENAI_", "OLLAMA_")
# PYTHONDONTWRITEBYTECODE would make every run compile cortan from source: an installed
# cortan has its .pyc files, so the benchmarks measure with them (the warm-up run writes them).
STRIPPED = (
    "NO_COLOR",
    "FORCE_COLOR",
    "COLUMNS",
    "LINES",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONDONTWRITEBYTECODE",
)


def cortan_command() -> list[str]:
    """The installed ``cortan`` script beside this interpreter (what users run)."""
    script = Path(PYTHON).parent / "cortan"
    return [str(script)] if script.exists() else [PYTHON, "-m", "cortan"]


@contextmanager
def isolated_env(**extra: str) -> Iterator[dict[str, str]]:
    """An environment with a private config, data folder and home, and no keyring."""
    with tempfile.TemporaryDirectory(prefix="cortan-bench-") as tmp:
        Path(tmp, "config.toml").touch()  # CORTAN_CONFIG must name a file that exists
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(STRIPPED_PREFIXES) and k not in STRIPPED
        }
        env.update(
            HOME=tmp,
            XDG_CONFIG_HOME=f"{tmp}/.config",
            XDG_DATA_HOME=f"{tmp}/.local/share",
            CORTAN_CONFIG=f"{tmp}/config.toml",
            CORTAN_DATA_DIR=f"{tmp}/data",
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
            TERM="xterm-256color",
        )
        env.update(extra)
        yield env


@dataclass(frozen=True, slots=True)
class Run:
    """One finished child: its CPU (user + system), wall time, peak RSS and exit code."""

    cpu: float
    wall: float
    maxrss_kib: int
    code: int


def run_child(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.DEVNULL,
) -> Run:
    """Run ``argv`` to completion and read its own resource usage with ``os.wait4``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
    return reap(proc, start)


def reap(proc: subprocess.Popen[Any], start: float) -> Run:
    """Wait for ``proc`` with ``os.wait4``: its rusage alone, not every child's."""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss, proc.returncode)


def interleave(
    cases: Mapping[str, Callable[[], Run]], repeat: int, warmup: int = 1
) -> dict[str, list[Run]]:
    """Run every case ``repeat`` times, round-robin, after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for case in cases.values():
            case()
    runs: dict[str, list[Run]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, case in cases.items():
            runs[name].append(case())
    return runs


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure beside its baseline, and the target it must meet."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: float | None = None  # on the ratio when there is a baseline, else on the value
    higher_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    @property
    def ok(self) -> bool | None:
        if self.target is None:
            return None
        measured = self.ratio if self.ratio is not None else self.value
        return measured >= self.target if self.higher_is_better else measured <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "ok": self.ok}

    def line(self) -> str:
        text = f"  {self.name:<44} {_fmt(self.value)} {self.unit}"
        if self.baseline is not None:
            text += f"   vs {self.baseline_name} {_fmt(self.baseline)} {self.unit}"
            text += f"   = {self.ratio:.2f}×" if self.ratio is not None else ""
        if self.target is not None:
            sign = "≥" if self.higher_is_better else "≤"
            unit = "×" if self.baseline is not None else f" {self.unit}"
            text += f"   target {sign} {_fmt(self.target)}{unit}  {'ok' if self.ok else 'MISSED'}"
        return text


def _fmt(value: float) -> str:
    if value >= 100_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def report(title: str, figures: Sequence[Figure], **extra: Any) -> dict[str, Any]:
    """Print the figures under ``title`` and return them as the JSON report's entry."""
    print(title)
    for figure in figures:
        print(figure.line())
    return {"title": title, "figures": [f.as_dict() for f in figures], **extra}


def ms(seconds: float) -> float:
    return seconds * 1000.0
