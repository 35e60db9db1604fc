"""Hostile input on every path into cortan: flags, variables, the config file, stdin.

Each case runs the installed ``cortan`` and expects one clear sentence on stderr, the
documented exit code (2 for usage and configuration, 1 for rejected input), and no
traceback. docs/security.md lists the cases and what cortan says.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, cortan_command, measured_command
from tests.servers import FakeOllama


def assert_fails(result_code: int, stderr: str, code: int, fragment: str) -> None:
    assert result_code == code, stderr
    assert_one_sentence(stderr)
    assert fragment in stderr, stderr


# -- flags and variables --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CORTAN_TIMEOUTS__CONNECT": "-1"}, "CORTAN_TIMEOUTS__CONNECT: -1 is not more than 0"),
        ({"CORTAN_TIMEOUTS__TOTAL": "nan"}, "CORTAN_TIMEOUTS__TOTAL"),
        ({"CORTAN_TIMEOUTS__FIRST_TOKEN": "1e999"}, "CORTAN_TIMEOUTS__FIRST_TOKEN"),
        ({"CORTAN_TIMEOUTS__CONNECT": "soon"}, "'soon' is not a number"),
        ({"CORTAN_MAX_INPUT_BYTES": "0"}, "CORTAN_MAX_INPUT_BYTES"),
        ({"CORTAN_MAX_OUTPUT_BYTES": "-5"}, "CORTAN_MAX_OUTPUT_BYTES"),
        ({"CORTAN_STDIN_TIMEOUT": "-1"}, "CORTAN_STDIN_TIMEOUT"),
        ({"CORTAN_COLOR": "maybe"}, "CORTAN_COLOR: 'maybe' is neither true nor false"),
        ({"CORTAN_DEFAULT_MODEL": ""}, "CORTAN_DEFAULT_MODEL"),
        ({"CORTAN_INSTRUCTION_POSITION": "middle"}, "CORTAN_INSTRUCTION_POSITION"),
        ({"CORTAN_PROVIDERS": "{not json"}, "CORTAN_PROVIDERS is not valid JSON"),
        ({"CORTAN_FALLBACK": "not-a-list"}, "CORTAN_FALLBACK is not valid JSON"),
        ({"OLLAMA_HOST": "http://x:99999"}, "OLLAMA_HOST: 'http://x:99999' is not a usable URL"),
        ({"OLLAMA_HOST": "http://[::1"}, "Invalid IPv6 URL"),
        ({"OPENAI_BASE_URL": "ftp://example.com/v1"}, "must start with http:// or https://"),
        # A table given whole as JSON: before, blamed on the config file, which had none.
        ({"CORTAN_TIMEOUTS": '{"connect": "x"}'},
         "CORTAN_TIMEOUTS (key `timeouts.connect`): 'x' is not a number"),
        # JSON's escape of a lone surrogate: as an alias it reached the store and failed
        # each request on it as an "internal error" (cortan serve: a 500, or no answer).
        ({"CORTAN_ALIASES": '{"bad": "ollama:x\\udc01"}'},
         "CORTAN_ALIASES (key `aliases.bad`): the value is not valid Unicode text"),
        ({"CORTAN_FALLBACK": '["ollama:\\ud800"]'},
         "CORTAN_FALLBACK: the value is not valid Unicode text"),
        ({"CORTAN_PROVIDERS__OLLAMA__HOSTS": '["http://x\\udc01:1"]'},
         "CORTAN_PROVIDERS__OLLAMA__HOSTS: the value is not valid Unicode text"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)  # fmt: skip
def test_bad_variable(cortan: type[CortanRunner], env: dict[str, str], fragment: str) -> None:
    result = cortan.run("ask", "--no-stdin", "hi", env=env)
    assert_fails(result.code, result.stderr, 2, fragment)
    assert "environment variable" in result.stderr


@pytest.mark.parametrize(
    ("line", "env"),
    [
        ('default_model = "ollama:llama3.2"', {"CORTAN_DEFAULT_MODEL": ""}),
        ("[timeouts]\nconnect = 5", {"CORTAN_TIMEOUTS__CONNECT": "-1"}),
    ],
    ids=["default_model", "timeouts.connect"],
)
def test_bad_variable_over_a_good_file_is_blamed_on_the_variable(
    cortan: type[CortanRunner], config_file: Path, line: str, env: dict[str, str]
) -> None:
    # The variable wins over the file, so the bad value is the variable's: naming the
    # file (whose value is fine) would send the user to fix the wrong place.
    config_file.write_text(line + "\n")
    result = cortan.run("ask", "--no-stdin", "hi", env=env)
    assert_fails(result.code, result.stderr, 2, f"environment variable {next(iter(env))}:")
    assert "config file" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-m", ""], "option --model is empty"),
        (["-m", "  "], "option --model is empty"),
        (["-m", "ollama:"], "has a provider but no model"),
    ],
)
def test_bad_model_flag(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: list[str], fragment: str
) -> None:
    result = cortan.run("ask", "--no-stdin", *args, "hi")
    assert_fails(result.code, result.stderr, 2, fragment)
    assert ollama_env.chat_requests == []


def test_prompt_argument_that_is_not_utf8(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "--no-stdin", os.fsdecode(b"caf\xe9 au lait"))
    assert_fails(result.code, result.stderr, 1, "the prompt is not valid UTF-8 text (byte 0xe9")
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["logs", "-n", "many"], "invalid value for '-n': 'many' is not a whole number"),
        (["logs", "-n", "0"], "invalid value for '-n': 0 is less than 1"),
        (["batch", "-j", "5000", "x"], "'-j': 5000 is more than 4096"),
        (["ask", "--max-tokens", "1.5", "hi"], "'--max-tokens': '1.5' is not a whole number"),
        (["sessions", "export", "-f", "yaml", "x"], "'-f': 'yaml' is not one of 'md', 'json'"),
    ],
)
def test_flag_of_the_wrong_type_is_a_usage_error(
    cortan: type[CortanRunner], args: list[str], fragment: str
) -> None:
    """In cortan's words, not pydantic's "Input should be ..." that Typer passes on."""
    result = cortan.run(*args)
    assert result.code == 2
    assert fragment in result.stderr
    assert "Input should" not in result.stderr
    assert_one_sentence(result.stderr)


HUGE = str(10**30)  # past SQLite's 64-bit integers


@pytest.mark.parametrize(
    "args",
    [
        ["logs", "-n", HUGE],
        ["logs", "rm", HUGE],
        ["sessions", "list", "-n", HUGE],
        ["sessions", "show", "#" + HUGE],
        ["ask", "--no-stdin", "--session", HUGE, "hi"],
        ["grants", "revoke", HUGE],
    ],
    ids=" ".join,
)
def test_a_number_too_large_for_the_store(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: list[str]
) -> None:
    """sqlite3 raised OverflowError, reported as an internal error with exit 1."""
    assert cortan.run("ask", "--no-stdin", "hi").code == 0  # a store with something in it
    asked = len(ollama_env.chat_requests)
    result = cortan.run(*args)
    assert_fails(result.code, result.stderr, 2, "larger than the session store can hold")
    assert len(ollama_env.chat_requests) == asked


@pytest.mark.parametrize(
    ("env", "meant"),
    [
        ({"CORTAN_DEFUALT_MODEL": "x"}, "CORTAN_DEFAULT_MODEL"),
        ({"CORTAN_PROVIDER__OLLAMA__HOSTS": "[]"}, "CORTAN_PROVIDERS__OLLAMA__HOSTS"),
        ({"CORTAN_TOKEN": "t", "CORTAN_MY_SCRIPT": "1"}, None),  # a script's own: not a typo
    ],
)
def test_a_misspelt_variable_is_named(
    cortan: type[CortanRunner], ollama_env: FakeOllama, env: dict[str, str], meant: str | None
) -> None:
    """pydantic-settings ignores a variable that names no setting: a typo changed nothing."""
    result = cortan.run("ask", "--no-stdin", "hi", env=env)
    assert result.code == 0 and result.stdout == "Hello, world!\n"
    if meant is None:
        assert result.stderr == ""
    else:
        given = next(iter(env))
        assert result.stderr == (
            f"cortan: warning: environment variable {given} names no setting: "
            f"did you mean {meant}?\n"
        )


def test_unknown_log_level_warns_and_goes_on(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "--no-stdin", "hi", env={"CORTAN_LOG_LEVEL": "loud"})
    assert result.code == 0
    assert result.stderr.count("\n") == 1 and "CORTAN_LOG_LEVEL='loud'" in result.stderr


def test_unknown_log_format_warns_and_goes_on(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # Before: a misspelt format (jsno) gave text lines, and nothing said why.
    env = {"CORTAN_LOG_LEVEL": "error", "CORTAN_LOG_FORMAT": "jsno"}
    result = cortan.run("ask", "--no-stdin", "hi", env=env)
    assert result.code == 0
    assert result.stderr == (
        "cortan: warning: CORTAN_LOG_FORMAT='jsno' is neither json nor text; using text\n"
    )


# -- the config file --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"default_model = \n", "is not valid TOML"),
        (b"[timeouts\nconnect = 1\n", "is not valid TOML"),
        (b"a = 'nul\x00'\n", "is not valid TOML"),
        (b"\xff\xfe\x00d\x00e", "is not UTF-8 text"),
        (b"colour = true\n", "key `colour`: unknown setting"),
        (b"[timeouts]\nconect = 3\n", "key `timeouts.conect`: unknown setting"),
        (b"default_model = 3\n", "key `default_model`: 3 is not text (quote it)"),
        (b"timeouts = 3\n", "key `timeouts`"),
        (b"[timeouts]\nconnect = -1\n", "key `timeouts.connect`: -1 is not more than 0"),
        (b"max_input_bytes = 99999999999999999999\n", "key `max_input_bytes`"),
        (b'[providers.x]\nkind = "gopher"\n', "key `providers.x.kind`"),
        (
            b'[providers.x]\nhosts = ["http://127.0.0.1:9"]\n',
            "key `providers.x.kind`: it is required",
        ),
        (b'[providers.x]\nkind = "ollama"\nhosts = ["http://[::1"]\n', "not a usable URL"),
        (b'[providers.x]\nkind = "openai"\nbase_url = "localhost/v1"\n', "http:// or https://"),
        (b'[providers."a:b"]\nkind = "ollama"\n', "must be non-empty and have no ':'"),
        # A value that fits no member of a union: before, `parallel.constrained-int`,
        # `think.llama.bool`, "is not a whole number" for a table, "a valid tuple".
        (b'[providers.x]\nkind = "ollama"\nparallel = 0\n',
         "key `providers.x.parallel`: 0 is less than 1"),
        (b'[providers.x]\nkind = "ollama"\nhosts = ["http://h:1"]\nparallel = {"http://h:1" = 0}\n',
         "key `providers.x.parallel.http://h:1`: 0 is less than 1"),
        (b'[think]\nllama = "loud"\n', "key `think.llama`: 'loud' is not one of"),
        (b"[capabilities]\nllama = 5\n", "key `capabilities.llama`: 5 is not a list"),
        # A misspelt key is named with the one meant, as `-m opneai:…` and `/modle` are.
        (b'default_modle = "qwen3"\n',
         "key `default_modle`: unknown setting; did you mean `default_model`?"),
        (b"[timeouts]\nconect = 3\n",
         "key `timeouts.conect`: unknown setting; did you mean `connect`?"),
        (b"[serve]\nprot = 1\n", "key `serve.prot`: unknown setting; did you mean `port`?"),
        (b"zzz = 1\n", "key `zzz`: unknown setting (see docs/configuration.md for the list)"),
    ],
)  # fmt: skip
def test_bad_config_file(
    cortan: type[CortanRunner], config_file: Path, content: bytes, fragment: str
) -> None:
    config_file.write_bytes(content)
    result = cortan.run("ask", "--no-stdin", "hi")
    assert_fails(result.code, result.stderr, 2, fragment)
    assert f"config file {config_file}" in result.stderr


def test_a_key_of_a_megabyte_is_named_in_one_short_line(
    cortan: type[CortanRunner], config_file: Path
) -> None:
    """The unknown key was written whole into the sentence: a megabyte of stderr."""
    config_file.write_bytes(b"default_mode" + b"l" * 1_000_000 + b" = 1\n")
    result = cortan.run("ask", "--no-stdin", "hi")
    assert_fails(result.code, result.stderr, 2, "key `default_modelll")
    assert len(result.stderr) < 500, len(result.stderr)


@pytest.mark.parametrize("config", ["none", "unrelated"])
def test_table_made_by_variables_is_blamed_on_them(
    cortan: type[CortanRunner], config_file: Path, config: str
) -> None:
    # CORTAN_PROVIDERS__LAN__HOSTS alone makes a provider without a kind: the file
    # (absent, or about something else) is not where to fix it.
    env = {"CORTAN_PROVIDERS__LAN__HOSTS": '["http://127.0.0.1:9"]'}
    if config == "none":
        env["CORTAN_CONFIG"] = ""  # the default file, which the isolated home lacks
    else:
        config_file.write_text('system = "x"\n')
    result = cortan.run("ask", "--no-stdin", "hi", env=env)
    assert_fails(
        result.code, result.stderr, 2,
        "environment variables CORTAN_PROVIDERS__LAN__*: key `providers.lan.kind` is required"
        " (set CORTAN_PROVIDERS__LAN__KIND)",
    )  # fmt: skip
    assert "config file" not in result.stderr


def test_config_file_that_is_a_directory(cortan: type[CortanRunner], config_file: Path) -> None:
    config_file.unlink()
    config_file.mkdir()
    result = cortan.run("config", "show")
    assert_fails(result.code, result.stderr, 2, "is a directory, not a TOML file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_unreadable_config_file(cortan: type[CortanRunner], config_file: Path) -> None:
    config_file.write_text('system = "x"\n')
    config_file.chmod(0)
    result = cortan.run("config", "show")
    assert_fails(result.code, result.stderr, 2, "cannot be read: permission denied")


def test_config_path_that_cannot_be_opened(cortan: type[CortanRunner], tmp_path: Path) -> None:
    # Unreadable even for root: a symlink loop, and a path through a plain file.
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    plain = tmp_path / "plain"
    plain.write_text("")
    for path, fragment in ((loop, "symbolic links"), (plain / "config.toml", "does not exist")):
        result = cortan.run("config", "show", env={"CORTAN_CONFIG": str(path)})
        assert_fails(result.code, result.stderr, 2, fragment)


@pytest.mark.parametrize("device", ["/dev/zero", "fifo"])
def test_config_that_never_ends_is_refused(
    cortan: type[CortanRunner], tmp_path: Path, device: str
) -> None:
    path = Path(device) if device.startswith("/") else tmp_path / device
    if device == "fifo":
        os.mkfifo(path)
    result = cortan.run("config", "show", env={"CORTAN_CONFIG": str(path)}, timeout=10)
    assert_fails(result.code, result.stderr, 2, "is not a regular file")


def test_enormous_config_file(cortan: type[CortanRunner], config_file: Path) -> None:
    config_file.write_text("# padding\n" * 200_000)
    result = cortan.run("config", "show")
    assert_fails(result.code, result.stderr, 2, "is larger than 1 MiB")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("system = " + "[" * 2000 + "]" * 2000, "nests arrays or tables too deeply"),
        ("system = " + "{a = " * 500 + "1" + "}" * 500, "nests arrays or tables too deeply"),
        ("max_input_bytes = " + "9" * 5000, "holds a number too long to read"),
    ],
)
def test_config_file_past_the_parser(
    cortan: type[CortanRunner], config_file: Path, text: str, fragment: str
) -> None:
    # tomllib recursed out of the stack, int() refused the digits: an internal error, exit 1.
    config_file.write_text(text + "\n")
    result = cortan.run("config", "show")
    assert_fails(result.code, result.stderr, 2, fragment)


def test_a_config_file_with_a_byte_order_mark_is_read(
    cortan: type[CortanRunner], config_file: Path
) -> None:
    # Before: "is not valid TOML: Invalid statement (at line 1, column 1)", on a line
    # that looks right in every editor.
    config_file.write_bytes(b'\xef\xbb\xbfsystem = "Answer briefly."\n')
    result = cortan.run("config", "show", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["system"] == "Answer briefly."
    config_file.write_bytes('system = "x"\n'.encode("utf-16"))
    result = cortan.run("config", "show")
    assert_fails(result.code, result.stderr, 2, "(it is UTF-16: save it as UTF-8)")


def test_variable_nested_past_the_parser(cortan: type[CortanRunner]) -> None:
    env = {"CORTAN_FALLBACK": "[" * 5000 + "]" * 5000}
    result = cortan.run("config", "show", env=env)
    assert_fails(result.code, result.stderr, 2, "CORTAN_FALLBACK nests its JSON too deeply")


def test_a_big_wrong_value_is_named_in_one_short_line(
    cortan: type[CortanRunner], config_file: Path
) -> None:
    # The whole value went into the sentence: 600 KB of stderr for one list.
    config_file.write_text("system = [" + "1, " * 200_000 + "]\n")
    result = cortan.run("config", "show")
    assert_fails(result.code, result.stderr, 2, "key `system`: [1, 1, 1")
    assert len(result.stderr) < 300, len(result.stderr)


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        ("head -c 200000000 /dev/zero", "printed more than 64 KiB, and was stopped"),
        ("no-such-key-command", "could not run: there is no such command"),
        ("'unclosed", "could not run: no closing quotation"),
    ],
)
def test_a_key_command_that_misbehaves_is_one_sentence(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    config_file: Path,
    tmp_path: Path,
    command: str,
    sentence: str,
) -> None:
    # Before: the output was read whole: `yes` grew until the kernel killed cortan (137).
    config_file.write_text(
        f'[providers.x]\nkind = "openai"\nbase_url = "{ollama_env.url}/v1"\n'
        f"api_key_cmd = {json.dumps(command)}\n"
    )
    config_file.chmod(0o600)
    peak = tmp_path / "peak.json"
    done = subprocess.run(
        [*measured_command(peak), "ask", "--no-stdin", "-m", "x:m", "hi"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert_fails(done.returncode, done.stderr, 2, f"api_key_cmd for provider 'x' {sentence}")
    assert int(peak.read_text()) < 150_000  # KiB: 200 MB of output is not held


@pytest.mark.parametrize("where", ["/dev/null", "file", "file/below"])
def test_a_data_folder_that_is_a_file_is_named(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path, where: str
) -> None:
    # Before: "cannot open the session store /dev/null/cortan.db: File exists".
    (tmp_path / "file").write_text("")
    data = Path(where) if where.startswith("/") else tmp_path / where
    blamed = Path(where) if where.startswith("/") else tmp_path / "file"
    result = cortan.run("ask", "--no-stdin", "hi", env={"CORTAN_DATA_DIR": str(data)})
    assert result.code in (0, 1), result.stderr  # answered unstored where nothing can be made
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"{blamed} is not a folder (CORTAN_DATA_DIR names the data folder)" in result.stderr


NO_SUCH_USER = "~no-such-user-here"


@pytest.mark.parametrize(
    ("args", "env", "code", "fragment"),
    [
        (("-f", f"{NO_SUCH_USER}/notes.txt"), {}, 1,
         f"cannot attach {NO_SUCH_USER}/notes.txt: there is no such file"),
        (("-a", f"{NO_SUCH_USER}/cat.png"), {}, 1,
         f"cannot attach {NO_SUCH_USER}/cat.png: there is no such file"),
        ((), {"CORTAN_CONFIG": f"{NO_SUCH_USER}/c.toml"}, 2,
         f"CORTAN_CONFIG names {NO_SUCH_USER}/c.toml, which does not exist"),
        ((), {"CORTAN_DATA_DIR": f"{NO_SUCH_USER}/data"}, 2,
         f"CORTAN_DATA_DIR names {NO_SUCH_USER}/data, and {NO_SUCH_USER} is no user's home"),
    ],
    ids=["-f", "-a", "CORTAN_CONFIG", "CORTAN_DATA_DIR"],
)  # fmt: skip
def test_a_home_folder_of_no_user_is_one_sentence(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    tmp_path: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    code: int,
    fragment: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: Path.expanduser's RuntimeError, an internal error (and it ended the REPL).
    monkeypatch.chdir(tmp_path)
    result = cortan.run("ask", "--no-stdin", *args, "hi", env=env)
    assert_fails(result.code, result.stderr, code, fragment)
    assert not (tmp_path / NO_SUCH_USER).exists()  # no store made in ./~no-such-user-here


def test_a_home_that_is_no_folder_reads_no_config_and_still_answers(
    cortan: type[CortanRunner], ollama_env: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A service account's HOME=/dev/null: before, "config file /dev/null/.config/cortan/
    # config.toml cannot be read: Not a directory" (exit 2) for a file that cannot be.
    for name in ("CORTAN_CONFIG", "CORTAN_DATA_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    result = cortan.run("ask", "--no-stdin", "hi", env={"HOME": "/dev/null"})
    assert (result.code, result.stdout) == (0, "Hello, world!\n"), result.stderr
    assert result.stderr == (
        "cortan: warning: cannot open the session store /dev/null/.local/share/cortan/"
        "cortan.db: /dev/null is not a folder; this exchange is not stored\n"
    )


@pytest.mark.parametrize(
    ("aliases", "fragment"),
    [
        ({"a": "b", "b": "a"}, "refers to itself in a loop"),
        ({f"a{n}": f"a{n + 1}" for n in range(20)} | {"a20": "ollama:llama3.2"},
         "alias 'a0' leads through more than 8 aliases: point it at a model"),
    ],
    ids=["loop", "long chain"],
)  # fmt: skip
def test_aliases_that_never_reach_a_model(
    cortan: type[CortanRunner], config_file: Path, aliases: dict[str, str], fragment: str
) -> None:
    # Before: a long chain with no loop in it was called a loop.
    config_file.write_text(
        "[aliases]\n" + "".join(f'{name} = "{to}"\n' for name, to in aliases.items())
    )
    first = next(iter(aliases))
    result = cortan.run("ask", "--no-stdin", "-m", first, "hi")
    assert_fails(result.code, result.stderr, 2, fragment)


# -- stdin ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        # An image is known by its bytes: llama3.2 here cannot see, and says so.
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "cannot see images"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "looks like binary data"),
        (b"caf\xe9 au lait", "is not valid UTF-8 text (byte 0xe9 at offset 3)"),
        (b"\xc3\x28 broken pair", "is not valid UTF-8"),
        ("utf-16 without a BOM".encode("utf-16-le"), "looks like binary data"),
        (b"\xff\xfe" + b"\x00\xd8", "is not valid UTF-16 text"),
        (b"\xef\xbb\xbf", "the prompt is empty"),
    ],
)
def test_bad_stdin(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data: bytes, fragment: str
) -> None:
    result = cortan.run("ask", input=data)
    assert_fails(result.code, result.stderr, 1, fragment)
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize(
    ("data", "sent"),
    [
        ("héllo wörld".encode("utf-16"), "héllo wörld"),
        ("ünïcode".encode("utf-32"), "ünïcode"),
        ("\ufeffwith a UTF-8 BOM".encode(), "with a UTF-8 BOM"),
        (b"colour \x1b[31mred\x1b[0m and a bell\x07", "colour [31mred[0m and a bell"),
    ],
)
def test_odd_but_good_stdin_is_sent_clean(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data: bytes, sent: str
) -> None:
    result = cortan.run("ask", input=data)
    assert result.code == 0, result.stderr
    assert ollama_env.chat_requests[0].json["messages"][-1]["content"] == sent


def test_closed_stdin_is_no_input(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    command = " ".join(cortan_command())
    done = subprocess.run(
        ["sh", "-c", f"exec {command} ask hi <&-"], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert ollama_env.chat_requests[0].json["messages"][-1]["content"] == "hi"


@pytest.mark.parametrize("generator", ["yes", "head -c 500M /dev/zero | tr '\\0' a"])
def test_enormous_stdin_is_refused_quickly_in_little_memory(
    ollama_env: FakeOllama, generator: str, tmp_path: Path
) -> None:
    producer = subprocess.Popen(["sh", "-c", generator], stdout=subprocess.PIPE)
    started = time.monotonic()
    peak = tmp_path / "peak"
    proc = subprocess.Popen(
        [*measured_command(peak), "ask", "x"],
        stdin=producer.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert producer.stdout is not None
    producer.stdout.close()
    proc.wait(timeout=60)
    elapsed = time.monotonic() - started
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    producer.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    assert proc.returncode == 1
    assert_one_sentence(stderr)
    assert "stdin is larger than the 1 MiB limit" in stderr
    assert elapsed < 10  # about 0.3 s: it stops one byte past the limit
    assert int(peak.read_text()) < 150 * 1024  # KiB: about 40 MiB, as for any short run
    assert ollama_env.chat_requests == []
