"""Shell completion, in the real shells: `cortan completion SHELL` and what Tab then offers.

bash is driven through its programmable-completion variables (COMP_WORDS, COMP_CWORD)
calling the very function the script installs; fish through `complete -C`, which asks
the installed completion as Tab would; zsh through Tab itself, typed into an interactive
zsh on a pseudo-terminal. A shell that is not installed skips its tests, saying so (CI
machines may lack zsh and fish).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, cortan_command


def need(shell: str) -> str:
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"{shell} is not installed on this machine")
    return found


@pytest.fixture
def path_env(tmp_path: Path, isolated_env: Path) -> dict[str, str]:
    """An environment whose PATH finds this cortan as `cortan`, as an installed one would be."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "cortan"
    command = " ".join(shlex.quote(part) for part in cortan_command())
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def bash_complete(env: dict[str, str], *words: str) -> list[str]:
    """What Tab offers after ``words`` (the last one being completed) in bash."""
    bash = need("bash")
    line = " ".join(shlex.quote(w) for w in words)
    script = (
        'eval "$(cortan completion bash)"\n'
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        '_cortan_completion cortan\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    return run([bash, "--norc", "--noprofile", "-c", script], env).split()


def fish_complete(env: dict[str, str], line: str) -> list[str]:
    fish = need("fish")
    script = f"cortan completion fish | source; complete -C {shlex.quote(line)}"
    out = run([fish, "--no-config", "-c", script], env)
    return [row.split("\t")[0] for row in out.splitlines()]


def test_bash_completes_options_and_commands(path_env: dict[str, str]) -> None:
    assert bash_complete(path_env, "cortan", "ask", "--mo") == ["--model"]
    assert bash_complete(path_env, "cortan", "lo") == ["logs"]
    assert bash_complete(path_env, "cortan", "logs", "r") == ["rm"]
    assert {"ask", "chat", "models", "completion"} <= set(bash_complete(path_env, "cortan", ""))
    assert "--fork" in bash_complete(path_env, "cortan", "ask", "--f")


def test_fish_completes_options_and_commands(path_env: dict[str, str]) -> None:
    assert fish_complete(path_env, "cortan ask --mo") == ["--model"]
    assert fish_complete(path_env, "cortan mod") == ["models"]
    assert "pull" in fish_complete(path_env, "cortan models ")


def clear_line(child: Any) -> None:
    """Empty the line and wait for a fresh prompt, even when a completion still runs.

    Ctrl-C during a completion's own `cortan` process aborts it without a new prompt
    (seen once under load); Ctrl-U then Enter on an empty line always draws one.
    """
    child.sendcontrol("u")
    child.sendline("")
    child.expect("READY> ")


def test_zsh_tab_completes_an_option(path_env: dict[str, str]) -> None:
    zsh = need("zsh")
    import pexpect

    env = {**path_env, "TERM": "dumb"}
    child = pexpect.spawn(zsh, ["-f", "-i"], env=env, encoding="utf-8", timeout=30)
    try:
        child.sendline(
            'PS1="READY> "; autoload -Uz compinit; compinit -u; '
            'eval "$(cortan completion zsh)"; echo SET""UP'
        )
        child.expect("SETUP")
        child.expect("READY> ")
        child.send("cortan ask --mo\t")
        child.expect("--model")  # typed was --mo: the rest came from Tab
        clear_line(child)
        child.send("cortan sess\t")
        child.expect("sessions")
        clear_line(child)
        child.sendcontrol("d")  # leave as a user would
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_the_scripts_name_cortan(cortan: type[CortanRunner]) -> None:
    for shell in ("bash", "zsh", "fish", "powershell"):
        result = cortan.run("completion", shell)
        assert result.code == 0, result.stderr
        assert "_CORTAN_COMPLETE" in result.stdout
        assert result.stderr == ""


@pytest.mark.parametrize("args", [("tcsh",), (), ("bash", "zsh"), ("\x1b[2J",), ("x" * 5000,)])
def test_an_unknown_shell_is_one_sentence(
    cortan: type[CortanRunner], args: tuple[str, ...]
) -> None:
    result = cortan.run("completion", *args)
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert result.stdout == ""
    assert "\x1b" not in result.stderr
