"""`cortan batch` against hostile inputs and outputs: one sentence, the documented exit
code, the input never harmed, the partial output kept (red team, docs/batch.md)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama


def test_output_hard_linked_to_the_input_is_refused_and_the_input_kept(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    other = tmp_path / "out.jsonl"
    os.link(source, other)  # another name for the same file: opening it "w" empties the input
    result = cortan.run("batch", str(source), "-o", str(other))
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "is the input itself" in result.stderr
    assert source.read_text() == '{"prompt": "a"}\n{"prompt": "b"}\n'
    assert ollama_env.chat_requests == []
