"""Run every benchmark of issue 7 and write one JSON report: ``python -m tests.benchmarks.run``.

``nox -s bench`` runs this. Each ``bench_*.py`` module prints its figures beside
their baselines and returns them; this driver adds the machine they were
measured on, so reports from two runs (or two machines) can be compared. A
benchmark that fails is recorded with its error and the others still run; the
exit status is 1 if any failed. Missed targets are reported, not fatal: these are
measurements, and absolute times drift on a shared machine.

    python -m tests.benchmarks.run --out bench-report.json [--only startup bus] [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cortan import __version__

#: name -> how to run it quickly (``--quick``) and in full; each returns its report entry.
BENCHMARKS = (
    "startup",
    "first_request",
    "repl",
    "bus",
    "store",
    "render",
    "serve",
    "held",
    "head",
    "batch",
    "tools",
)
QUICK_REPEAT = {"startup": 5, "first_request": 3, "repl": 2, "store": 5, "tools": 5, "head": 3}


def run_render(quick: bool) -> dict[str, Any]:
    """bench_render has its own command line and JSON file: run it through them."""
    from tests.benchmarks import bench_render

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "render.json")
        bench_render.main(["--json", str(out)])
        data: dict[str, Any] = json.loads(out.read_text())
    summary, targets = data["summary"], data["targets"]
    data["figures"] = [
        {
            "name": name,
            "value": value,
            "target": targets[name],
            "higher_is_better": name == "tokens_per_cpu_s",
            "ok": value >= targets[name] if name == "tokens_per_cpu_s" else value <= targets[name],
        }
        for name, value in summary.items()
    ]
    return {"title": "streaming render (bench_render)", **data}


def get_runner(name: str, quick: bool) -> Callable[[], dict[str, Any]]:
    if name == "render":
        return lambda: run_render(quick)
    module = importlib.import_module(f"tests.benchmarks.bench_{name}")
    main: Callable[..., dict[str, Any]] = module.main
    if quick and name in QUICK_REPEAT:
        return lambda: main(QUICK_REPEAT[name])
    if quick and name == "bus":
        return lambda: main(50_000, 3)
    if name == "serve":
        return lambda: main(1 if quick else 3, quick)
    if quick and name in ("batch", "held"):
        quick_run: Callable[[], dict[str, Any]] = module.quick
        return quick_run
    return main


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    return {
        "cortan": __version__,
        "commit": _git_commit(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure that has a target, flat: the first place to look in a report."""
    rows = []
    for bench, result in results.items():
        for figure in result.get("figures", []):
            if figure.get("target") is not None:
                rows.append({"benchmark": bench, **figure})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("bench-report.json"))
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a smoke run")
    args = parser.parse_args(argv)
    os.environ.setdefault("TERM", "xterm-256color")
    report: dict[str, Any] = {"machine": machine(), "benchmarks": {}}
    failed = False
    for name in args.only or BENCHMARKS:
        print(f"\n== {name}", flush=True)
        started = time.perf_counter()
        try:
            result = get_runner(name, args.quick)()
        except Exception as exc:
            traceback.print_exc()
            result, failed = {"error": f"{type(exc).__name__}: {exc}"}, True
        result["seconds"] = round(time.perf_counter() - started, 1)
        report["benchmarks"][name] = result
    report["targets"] = summarise(report["benchmarks"])
    report["machine"]["load_average_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    missed = [f"{t['benchmark']}: {t['name']}" for t in report["targets"] if t["ok"] is False]
    print(
        f"\nwrote {args.out}; {len(report['targets']) - len(missed)} targets met, "
        f"{len(missed)} missed" + "".join(f"\n  missed: {m}" for m in missed)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
