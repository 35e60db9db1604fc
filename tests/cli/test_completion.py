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
    return bash_line(env, " ".join(shlex.quote(w) if w else "" for w in words))


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


@pytest.fixture
def named(path_env: dict[str, str], openai_env: Any, tmp_path: Path) -> dict[str, str]:
    """A config with an alias and a provider, and a store with two named conversations."""
    config = Path(path_env["CORTAN_CONFIG"])
    config.write_text('[aliases]\nfast = "openai:gpt-4o"\n"bad $(x)" = "openai:x"\n')
    env = {**path_env, **{k: v for k, v in os.environ.items() if k.startswith("OPENAI_")}}
    env["CORTAN_DEFAULT_MODEL"] = "openai:gpt-4o-mini"
    for name in ("db", "notes"):
        run([*cortan_command(), "ask", "--session", name, "hi"], env)
    return env


def bash_line(env: dict[str, str], line: str) -> list[str]:
    """What Tab offers at the end of ``line``, the variables set as bash sets them
    (COMP_WORDS split at COMP_WORDBREAKS too: ``openai:g`` is three words)."""
    bash = need("bash")
    script = (
        'eval "$(cortan completion bash)"\n'
        f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        "COMP_WORDS=(${COMP_LINE//:/ : }); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        '_cortan_completion cortan\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    return run([bash, "--norc", "--noprofile", "-c", script], env).split()


def test_bash_completes_models_and_sessions(named: dict[str, str]) -> None:
    assert bash_line(named, "cortan ask -m fa") == ["fast"]
    assert "openai:" in bash_line(named, "cortan ask -m op")
    # After the colon bash replaces only what follows it.
    assert bash_line(named, "cortan ask -m openai:gpt-4o-") == ["gpt-4o-mini"]
    assert bash_line(named, "cortan ask --session n") == ["notes"]
    assert bash_line(named, "cortan sessions show ") == ["notes", "db"]
    assert bash_line(named, "cortan sessions rm 1") == ["1"]
    assert not any("$" in word for word in bash_line(named, "cortan ask -m "))


def test_a_model_that_never_answered_is_not_offered(named: dict[str, str]) -> None:
    done = subprocess.run(
        [*cortan_command(), "ask", "-m", "openai:gpt-4o-typo", "hi"],
        env=named, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1  # the fake has no such model: a failed answer, stored
    assert bash_line(named, "cortan ask -m openai:gpt-4o-") == ["gpt-4o-mini"]


def test_fish_completes_models_and_sessions(named: dict[str, str]) -> None:
    assert fish_complete(named, "cortan ask -m openai:gpt-4o-") == ["openai:gpt-4o-mini"]
    assert sorted(fish_complete(named, "cortan chat --session ")) == ["db", "notes"]


def test_a_broken_store_offers_nothing_quietly(path_env: dict[str, str]) -> None:
    data = Path(path_env["CORTAN_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    (data / "cortan.db").write_bytes(b"not a store " * 100)
    Path(path_env["CORTAN_CONFIG"]).write_text("this is [not toml")
    env = {**path_env, "COMP_LINE": "cortan ask --session ", "_CORTAN_COMPLETE": "complete_bash"}
    done = subprocess.run(
        cortan_command(), capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "", "")


def test_bash_completes_the_words_an_option_takes(path_env: dict[str, str]) -> None:
    """`--think <Tab>` offered the files of the folder, as `--role`, `batch -F` and the
    shell of `completion` and `shell-init` did: each takes one of a few words."""
    Path(path_env["CORTAN_CONFIG"]).write_text('[roles.terse]\nsystem = "Be terse."\n')
    assert bash_line(path_env, "cortan ask --think ") == ["on", "off", "low", "medium", "high"]
    assert bash_line(path_env, "cortan chat --think m") == ["medium"]
    assert bash_line(path_env, "cortan ask --role ") == [
        "code",
        "explain",
        "review",
        "shell",
        "terse",
    ]
    assert bash_line(path_env, "cortan chat -r t") == ["terse"]
    assert bash_line(path_env, "cortan batch -F c") == ["csv"]
    assert bash_line(path_env, "cortan completion f") == ["fish"]
    assert bash_line(path_env, "cortan shell-init z") == ["zsh"]
