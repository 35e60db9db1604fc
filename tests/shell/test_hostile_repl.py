"""REPL lines that are hostile or odd: each ends in one line and the prompt comes back.

Driven through prompt-toolkit's pipe input against the loopback servers, as
tests/shell/test_repl.py drives it (red team, docs/repl.md).
"""

from __future__ import annotations

import pytest

from tests.shell.test_repl import Shell, pipe, stored_shell  # noqa: F401  (fixtures)


@pytest.mark.parametrize("arg", ["²", "¹⁰", "③", "٣x", "-5", "0", "1e3", "10" * 20])
async def test_sessions_with_an_odd_number_is_one_line(
    stored_shell: Shell,  # noqa: F811
    arg: str,
) -> None:
    # "²".isdigit() is True, but int("²") raises: the shell died with an internal error.
    await stored_shell.command(f"/sessions {arg}")
    assert not stored_shell.task.done()
    tail = stored_shell.text.rsplit(f"/sessions {arg}", 1)[-1]
    assert "usage: /sessions [N]" in tail or "larger than the session store can hold" in tail
