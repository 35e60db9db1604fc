"""Start-up (issue 7, target 1): ``cortan --version`` and ``cortan --help`` against bare Python.

CPU time (user + system) of each child, median over interleaved runs, as a ratio
to ``python -c pass`` on the same interpreter in the same run. Targets:
``--version`` ≤ 1.5×, ``--help`` ≤ 10×. ``cortan ask --help`` is shown for context.
"""

from __future__ import annotations

import sys
from typing import Any

from tests.benchmarks.measure import (
    BARE,
    Figure,
    cortan_command,
    interleave,
    isolated_env,
    median,
    ms,
    report,
    run_child,
)

REPEAT = 25


def main(repeat: int = REPEAT) -> dict[str, Any]:
    cortan = cortan_command()
    with isolated_env() as env:
        runs = interleave(
            {
                "bare": lambda: run_child(BARE, env),
                "version": lambda: run_child([*cortan, "--version"], env),
                "help": lambda: run_child([*cortan, "--help"], env),
                "ask_help": lambda: run_child([*cortan, "ask", "--help"], env),
            },
            repeat,
        )
    cpu = {name: ms(median([r.cpu for r in rs])) for name, rs in runs.items()}
    assert all(r.code == 0 for rs in runs.values() for r in rs), "a start-up run failed"
    bare = cpu["bare"]
    figures = [
        Figure("python -c pass (baseline)", bare, "ms CPU"),
        Figure("cortan --version", cpu["version"], "ms CPU", bare, "bare", 1.5),
        Figure("cortan --help", cpu["help"], "ms CPU", bare, "bare", 10.0),
        Figure("cortan ask --help", cpu["ask_help"], "ms CPU", bare, "bare"),
    ]
    return report(f"start-up: median CPU of {repeat} runs", figures, repeat=repeat)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else REPEAT)
