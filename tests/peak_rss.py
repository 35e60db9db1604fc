"""Run a command and report its own peak memory: `python tests/peak_rss.py OUT CMD...`.

Linux carries a parent's peak RSS into a child across fork and exec, so a child
spawned straight from a large pytest process reports pytest's peak, not its own.
This small process forks the command itself and writes the command's peak (KiB)
to OUT; its exit code is the command's.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> int:
    out, command = sys.argv[1], sys.argv[2:]
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    with open(out, "w", encoding="ascii") as file:
        file.write(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
