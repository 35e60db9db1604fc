"""The scripts in examples/ run for real against the loopback servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import CortanRunner
from tests.serve.test_cli import TOKEN, start
from tests.servers import FakeOllama, Reply

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(
    script: str, *args: str, cwd: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env={**env, "GIT_EDITOR": "true"},
        cwd=cwd,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        timeout=60,
        check=False,
    )


def test_summarise_log(tmp_path: Path, ollama_env: FakeOllama) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(500)))
    ollama_env.queue(Reply(pieces=["- all quiet"]))
    done = run("summarise-log.sh", str(log), "10")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "- all quiet\n"
    content = ollama_env.chat_requests[0].json["messages"][-1]["content"]
    assert "line 499" in content and "line 489" not in content
    assert content.endswith("in at most 8 bullet points.")


def test_ask_each_line(tmp_path: Path, ollama_env: FakeOllama) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("first?\n\nsecond?\n")
    done = run("ask-each-line.sh", str(questions))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Hello, world!") == 2
    asked = [r.json["messages"][-1]["content"] for r in ollama_env.chat_requests]
    assert asked == ["first?", "second?"]


def test_commit_message(tmp_path: Path, ollama_env: FakeOllama) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "a.txt").write_text("hello\n")
    subprocess.run([*git, "add", "a.txt"], cwd=repo, check=True)
    ollama_env.queue(Reply(pieces=["Add a greeting\n\nSo the file says hello."]))
    env_git = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    os.environ.update(env_git | {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})
    try:
        done = run("commit-message.sh", cwd=repo)
    finally:
        for name in (*env_git, "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
            os.environ.pop(name, None)
    assert done.returncode == 0, done.stderr
    log = subprocess.run(
        ["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert log.stdout.strip() == "Add a greeting\n\nSo the file says hello."
    assert "+hello" in ollama_env.chat_requests[0].json["messages"][-1]["content"]


def test_commit_message_outside_a_repository(tmp_path: Path, ollama_env: FakeOllama) -> None:
    """It dumped `git diff`'s whole usage and exited 129."""
    done = run("commit-message.sh", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "not in a git repository: run this where you commit\n"
    assert ollama_env.chat_requests == []


def test_extract_person(tmp_path: Path, ollama_env: FakeOllama) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear Ada (36, ada@example.com), thank you.\n")
    ollama_env.queue(Reply(pieces=['{"name": "Ada", "age": 36, "email": "ada@example.com"}']))
    done = run("extract-person.sh", str(letter))
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{\n  "name": "Ada",\n  "age": 36,\n  "email": "ada@example.com"\n}\n'
    sent = ollama_env.chat_requests[0].json
    assert sent["format"]["required"] == ["name", "age", "email"]
    assert sent["think"] is False
    ollama_env.queue(Reply(pieces=["no idea"]), Reply(pieces=["still no idea"]))
    failed = run("extract-person.sh", str(letter))
    assert (failed.returncode, failed.stdout) == (3, "")
    assert "still no idea" in failed.stderr


def test_ask_each_line_reports_the_real_exit_code(tmp_path: Path, ollama_env: FakeOllama) -> None:
    """A failed question names cortan's own exit code, not the 0 of `!` (issue 21)."""
    questions = tmp_path / "q.txt"
    questions.write_text("first?\nsecond?\n")
    ollama_env.queue(Reply(status=400, error="model runner crashed"))
    done = run("ask-each-line.sh", str(questions))
    assert "(no answer: cortan exited with 1)" in done.stdout, done.stdout
    assert done.stdout.count("Hello, world!") == 1  # the loop went on
    assert "rejected the request (400)" in done.stderr


def test_summarise_log_without_the_log_asks_nothing(tmp_path: Path, ollama_env: FakeOllama) -> None:
    done = run("summarise-log.sh", str(tmp_path / "missing.log"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr and "missing.log" in done.stderr
    assert ollama_env.chat_requests == []


def test_classify_reviews(tmp_path: Path, ollama_env: FakeOllama) -> None:
    import json

    reviews = tmp_path / "reviews.csv"
    reviews.write_text('id,text\nr1,"Great value, works well"\nr2,Broke after a day\n')
    labels = tmp_path / "labels.jsonl"
    ollama_env.queue(Reply(pieces=["positive"]))
    ollama_env.queue(Reply(pieces=["negative"]))
    done = run("classify-reviews.sh", str(reviews), str(labels))
    assert done.returncode == 0, done.stderr
    assert f"every review classified: {labels}" in done.stderr
    lines = [json.loads(line) for line in labels.read_text().splitlines()]
    # The two are asked at once: the fake's replies go in the order the requests came.
    prompts = [str(r.json["messages"][-1]["content"]) for r in ollama_env.chat_requests]
    first = "positive" if "Great value" in prompts[0] else "negative"
    assert [(line["id"], line["content"]) for line in lines] == [
        ("r1", first),
        ("r2", "negative" if first == "positive" else "positive"),
    ]
    asked = [r.json for r in ollama_env.chat_requests]
    assert all(body["options"]["temperature"] == 0 for body in asked)
    assert any(
        body["messages"][-1]["content"].endswith("Review: Broke after a day") for body in asked
    )
    again = run("classify-reviews.sh", str(reviews), str(labels))  # resumes: asks nothing
    assert again.returncode == 0, again.stderr
    assert len(ollama_env.chat_requests) == 2
    assert labels.read_text().count("\n") == 2


def test_read_only_report_runs_only_what_it_allows(tmp_path: Path, ollama_env: FakeOllama) -> None:
    import json

    (tmp_path / "keep.txt").write_text("one\ntwo\n")

    def proposal(command: str) -> Reply:
        return Reply(pieces=[json.dumps({"command": command, "explanation": "x"})])

    ollama_env.queue(proposal("wc -l keep.txt"))
    done = run("read-only-report.sh", "how", "long", "is", "keep.txt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "keep.txt"]
    assert ollama_env.chat_requests[0].json["messages"][-1]["content"] == "how long is keep.txt"
    for command in ("rm -r *", "ls; rm keep.txt", "wc -l keep.txt > keep.txt"):
        ollama_env.queue(proposal(command))
        refused = run("read-only-report.sh", "tidy", "up", cwd=tmp_path)
        assert refused.returncode == 5, command
        assert refused.stdout == ""
        assert "not run" in refused.stderr
    assert (tmp_path / "keep.txt").read_text() == "one\ntwo\n"
    assert run("read-only-report.sh").returncode == 2


def test_look_around(tmp_path: Path, ollama_env: FakeOllama) -> None:
    from tests.servers import FakeCall

    (tmp_path / "setup.cfg").write_text("[metadata]\nname = demo\n")
    ollama_env.queue(
        Reply(pieces=[], tool_calls=[FakeCall("list_dir", {"path": "."})]),
        Reply(pieces=[], tool_calls=[FakeCall("read_file", {"path": "setup.cfg"})]),
        Reply(pieces=["A Python package named demo."]),
    )
    done = run("look-around.sh", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "A Python package named demo.\n"
    offered = [t["function"]["name"] for t in ollama_env.chat_requests[0].json["tools"]]
    assert offered == ["read_file", "list_dir", "search_text"]
    results = [m.get("content", "") for m in ollama_env.chat_requests[2].json["messages"]]
    assert any("name = demo" in text for text in results)


def test_a_missing_argument_is_a_usage_error() -> None:
    """Exit 2 and the usage line, as the scripts' headers (and cortan's table) say: not
    the 1 of bash's `${1:?}`, which cortan's own codes read as a runtime failure."""
    for script in ("summarise-log.sh", "extract-person.sh", "ask-each-line.sh"):
        done = run(script)
        assert (done.returncode, done.stdout) == (2, ""), (script, done.stderr)
        assert done.stderr.startswith(f"usage: {script} "), done.stderr
    done = run("classify-reviews.sh", "reviews.csv")  # the output file is needed too
    assert done.returncode == 2, done.stderr
    assert done.stderr == "usage: classify-reviews.sh REVIEWS.csv OUT.jsonl\n"


def test_gateway_chat_talks_through_cortan_serve(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """The gateway example, against a real `cortan serve`: two turns, one conversation."""
    ollama_env.queue(Reply(pieces=["Rayleigh", " scattering."]))
    ollama_env.queue(Reply(pieces=["Longer", " path."]))
    proc, url, _ = start(cortan, "--quiet")
    try:
        env = {**os.environ, "CORTAN_URL": url + "/v1", "CORTAN_TOKEN": TOKEN}
        script = [sys.executable, str(EXAMPLES / "gateway-chat.py")]
        done = subprocess.run(
            [*script, "Why is the sky blue?", "And at sunset?"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == "Rayleigh scattering.\nLonger path.\n"
        assert done.stderr.count("request ") == 2
        second = ollama_env.chat_requests[1].json["messages"]
        assert [m["content"] for m in second] == [
            "Why is the sky blue?", "Rayleigh scattering.", "And at sunset?"
        ]  # fmt: skip
        refused = subprocess.run(
            [*script, "hi"], capture_output=True, text=True, timeout=60, check=False,
            env={**env, "CORTAN_TOKEN": "wrong-token-0123456789"},
        )  # fmt: skip
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and "gateway-chat.py:" in refused.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    # The two turns are one stored conversation, which the second request's id finds.
    second_id = done.stderr.split("request ")[2].split()[0]
    shown = cortan.run("sessions", "show", second_id)
    assert shown.code == 0, shown.stderr
    assert shown.stdout.count("\n── ") == 4 and "And at sunset?" in shown.stdout
    assert f"request {second_id}" in shown.stdout
