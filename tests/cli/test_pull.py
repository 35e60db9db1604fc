"""`cortan models pull NAME` against the fake Ollama's /api/pull: lines when piped, a bar on
a terminal, Ctrl-C stopping the download cleanly, and one sentence for what cannot be pulled."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, cortan_command
from tests.servers import FakeOllama, FakeOpenAI


def wait_until(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (callable(predicate) and predicate()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_pull_piped_writes_a_line_per_stage(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("models", "pull", "tinyllama")
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "pulling manifest"
    assert "writing manifest" in lines
    assert sum(1 for line in lines if line.startswith("pulled ")) == 3  # one per layer
    assert len(lines) < 12  # never a line per progress step
    assert "ollama:tinyllama is ready" in lines[-1]
    assert "tinyllama:latest" in ollama_env.models
    body = next(r.json for r in ollama_env.requests if r.path == "/api/pull")
    assert isinstance(body, dict) and body["model"] == "tinyllama"


@pytest.mark.parametrize(
    "fields",
    [{"completed": 1.5}, {"total": "big"}, {"completed": "1e400", "total": 2.5}, {"total": True}],
    ids=["fractional-completed", "text-total", "both", "boolean-total"],
)
def test_pull_goes_on_past_progress_numbers_that_are_not_whole(
    cortan: type[CortanRunner], ollama_env: FakeOllama, fields: dict[str, object]
) -> None:
    """The SDK refused such a line, and the pull failed midway."""
    ollama_env.pull_fields = fields
    result = cortan.run("models", "pull", "tinyllama")
    assert result.code == 0, result.stderr
    assert "ollama:tinyllama is ready" in result.stderr.splitlines()[-1]
    assert "tinyllama:latest" in ollama_env.models


def test_pull_on_a_terminal_draws_a_bar_and_ctrl_c_stops_it(ollama_env: FakeOllama) -> None:
    import pexpect

    ollama_env.pull_delay = 0.2  # a slow download, to interrupt
    ollama_env.pull_steps = 50
    command, *args = cortan_command()
    child = pexpect.spawn(
        command, [*args, "models", "pull", "tinyllama"], env=dict(os.environ), timeout=20,
        dimensions=(24, 100),
    )  # fmt: skip
    try:
        child.expect("pulling manifest")
        # The bar of the first layer, its byte counts and speed in binary units, as the
        # plain lines and every other size cortan prints (rich's default said 4.0 MB).
        child.expect(r"/3\.8 MiB")
        child.expect(r"[0-9.]+ (bytes|KiB|MiB)/s")
        child.sendintr()
        child.expect("pull stopped; the same command again resumes")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 130
    wait_until(lambda: ollama_env.pulls_closed_early == 1)  # the download was let go
    assert "tinyllama:latest" not in ollama_env.models


def test_pull_of_an_unknown_model_is_one_sentence(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("models", "pull", "no-such-model")
    assert result.code == 1
    assert_one_sentence(result.stderr.splitlines()[-1] + "\n")
    assert "found no model 'no-such-model' to pull" in result.stderr


def test_pull_with_an_openai_provider_is_a_usage_error(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    result = cortan.run("models", "pull", "gpt-4o")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "works with Ollama providers" in result.stderr
    assert not any(r.path.endswith("/pull") for r in openai_env.requests)


@pytest.mark.parametrize(
    ("args", "code"),
    [((), 2), (("",), 2), (("   ",), 2), (("a", "b"), 2), (("opneai:gpt-4o",), 2)],
)
def test_pull_bad_names(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...], code: int
) -> None:
    result = cortan.run("models", "pull", *args)
    assert result.code == code, result.stderr
    assert_one_sentence(result.stderr)


def test_pull_from_a_server_that_is_down(cortan: type[CortanRunner], isolated_env: object) -> None:
    result = cortan.run("models", "pull", "tinyllama", env={"OLLAMA_HOST": "http://127.0.0.1:9"})
    assert result.code == 1
    assert_one_sentence(result.stderr)


def test_pull_on_a_terminal_prints_the_stages_in_the_order_they_came(
    ollama_env: FakeOllama,
) -> None:
    """The stages after the layers were printed above the live bars: the screen said the
    manifest was written before the layers came down."""
    from tests.e2e.test_terminal import Terminal

    term = Terminal(["models", "pull", "tinyllama"], dict(os.environ))
    try:
        screen = term.wait(lambda s: "is ready" in s)
    finally:
        term.child.close(force=True)
    lines = [line for line in screen.splitlines() if line.strip()]
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(start))
        for start in ("pulling manifest", "pulling de5d", "pulling 47a4", "verifying", "writing")
    ]
    assert order == sorted(order), screen
    assert "MB" not in screen and "/3.8 MiB" in screen


def test_pull_on_a_terminal_without_totals_draws_indeterminate_bars(
    ollama_env: FakeOllama,
) -> None:
    """No total (a server's odd one dropped): each layer still gets its bar, with the
    bytes so far and no end, and the pull finishes."""
    from tests.e2e.test_terminal import Terminal

    ollama_env.pull_fields = {"total": "big"}
    term = Terminal(["models", "pull", "tinyllama"], dict(os.environ))
    try:
        screen = term.wait(lambda s: "is ready" in s)
    finally:
        term.child.close(force=True)
    assert "pulling de5d" in screen and "3.8/? MiB" in screen  # so far, of an unknown total


def test_a_long_pull_is_not_cut_at_max_listing_bytes(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """Ollama sends a progress line every 60 ms: 8 MiB of them in about an hour, and the
    pull of a large model on a slow link failed there as a reply "larger than 8 MiB"."""
    ollama_env.pull_steps = 1000  # ~500 KiB of progress lines in all
    result = cortan.run("models", "pull", "tinyllama", env={"CORTAN_MAX_LISTING_BYTES": "65536"})
    assert result.code == 0, result.stderr
    assert "ollama:tinyllama is ready" in result.stderr.splitlines()[-1]


def test_one_progress_line_past_max_listing_bytes_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """Each line of a pull stays bounded, though the whole stream is not."""
    ollama_env.pull_fields = {"status": "s" * 100_000}
    result = cortan.run("models", "pull", "tinyllama", env={"CORTAN_MAX_LISTING_BYTES": "65536"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "larger than 64 KiB" in result.stderr and "max_listing_bytes" in result.stderr


@pytest.mark.parametrize(
    "fields",
    [{"total": -5, "completed": -1}, {"total": 2**70, "completed": 2**69}],
    ids=["negative", "past-any-disk"],
)
def test_pull_leaves_out_sizes_no_download_has(
    cortan: type[CortanRunner], ollama_env: FakeOllama, fields: dict[str, object]
) -> None:
    """A negative size printed as "pulled …: -5 bytes", one of 2**70 as "1.1e+12 GiB"."""
    ollama_env.pull_fields = fields
    result = cortan.run("models", "pull", "tinyllama")
    assert result.code == 0, result.stderr
    assert "-5 bytes" not in result.stderr and "e+" not in result.stderr
    assert "ollama:tinyllama is ready" in result.stderr.splitlines()[-1]
