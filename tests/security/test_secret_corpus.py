"""The secret guard on real text: the installed packages' own sources and docs.

A bounded, deterministic sample of this interpreter's site-packages (about 300 files)
must give almost no findings (the guard refuses a prompt on any finding, so a false
positive is a refused prompt), and secrets planted into those same files must all be
found, on the right line. The full measurement over every file is
``python -m tests.security.measure_false_positives``; docs/security.md has its figures.
"""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest

from cortan.engine.secrets import scan
from tests.security.measure_false_positives import get_corpus, scan_file
from tests.security.test_secrets import KIND, SECRETS

SAMPLE = 300


@pytest.fixture(scope="module")
def sample() -> list[Path]:
    files = list(get_corpus([Path(sysconfig.get_paths()["purelib"])]))
    if len(files) < SAMPLE:
        pytest.skip(f"only {len(files)} corpus files installed")
    step = len(files) / SAMPLE
    return [files[int(i * step)] for i in range(SAMPLE)]


def test_false_positive_rate_is_at_most_one_percent(sample: list[Path]) -> None:
    flagged = {}
    for path in sample:
        findings = scan_file(path)
        if findings:
            flagged[path] = [f"{f.line}: {f.kind}" for f in findings]
    assert len(flagged) <= SAMPLE // 100, flagged


def test_secrets_planted_in_real_files_are_found(sample: list[Path]) -> None:
    chooser = random.Random(6)
    missed = []
    for path, name in zip(sample, sorted(SECRETS) * SAMPLE, strict=False):
        lines = path.read_text("utf-8", "replace").splitlines()
        at = chooser.randrange(len(lines) + 1)
        text = "\n".join([*lines[:at], SECRETS[name], *lines[at:]])
        first_line = SECRETS[name].split("\n")[0]
        found = {(f.kind, f.line) for f in scan(text, "stdin")}
        if (KIND.get(name, name), at + 1) not in found:
            missed.append(f"{name} at {path}:{at + 1}: {first_line[:30]}")
    assert missed == []
