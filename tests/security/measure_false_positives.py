"""Measure the secret scanner on a real corpus: every finding in the installed packages.

Run: ``python -m tests.security.measure_false_positives [FOLDER ...] [--show N]``.
Without a folder it scans this interpreter's site-packages (.py, .md, .rst, .txt,
.pyi, .cfg, .toml, .json, .yaml files). It prints the files and bytes scanned, the
files with a finding, each finding (file:line kind) for review by hand, and the rate
of files with a finding. Which findings are false positives is a human judgement:
docs/security.md records the last review. The normal suite runs a bounded sample
of the same corpus (tests/security/test_secret_corpus.py).
"""

from __future__ import annotations

import argparse
import sysconfig
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from cortan.engine.secrets import Finding, scan

SUFFIXES = (".py", ".pyi", ".md", ".rst", ".txt", ".cfg", ".toml", ".json", ".yaml", ".yml")
MAX_BYTES = 4 << 20  # cortan refuses input past max_input_bytes anyway


def get_corpus(roots: list[Path]) -> Iterator[Path]:
    """Corpus files under ``roots``, in a stable order, skipping caches."""
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                yield path


def scan_file(path: Path) -> list[Finding] | None:
    """Findings in one file, or None when it is not UTF-8 text (cortan would refuse it)."""
    data = path.read_bytes()[:MAX_BYTES]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return scan(text, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--show", type=int, default=200, help="findings listed (default 200)")
    args = parser.parse_args(argv)
    roots = args.roots or [Path(sysconfig.get_paths()["purelib"])]
    files = nbytes = skipped = 0
    findings: list[Finding] = []
    started = time.perf_counter()
    for path in get_corpus(roots):
        result = scan_file(path)
        if result is None:
            skipped += 1
            continue
        files += 1
        nbytes += min(path.stat().st_size, MAX_BYTES)
        findings.extend(result)
    elapsed = time.perf_counter() - started
    flagged = {f.label for f in findings}
    for finding in findings[: args.show]:
        print(f"{finding.label}:{finding.line}: {finding.kind}")
    print(
        f"\nscanned {files} files, {nbytes / 1e6:.1f} MB in {elapsed:.1f} s "
        f"({skipped} not UTF-8, skipped)"
    )
    print(
        f"findings: {len(findings)} in {len(flagged)} files "
        f"({100 * len(flagged) / max(files, 1):.2f} % of files)"
    )
    for kind, count in Counter(f.kind for f in findings).most_common():
        print(f"  {kind}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
