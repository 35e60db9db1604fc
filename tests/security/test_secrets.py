"""The secret scanner: what it finds, what it leaves alone, and that it never echoes a value."""

from __future__ import annotations

import time

import pytest

from cortan.engine.secrets import Finding, describe, redact, scan

# Shaped like the real thing, but made up (nothing here was ever a live credential).
SECRETS = {
    "aws_access_key": "AKIAZ7X3Q2LBM4HN5KTD",
    "aws_secret_key": "aws_secret_access_key = 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",
    "openai_key": "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6l",
    "openai_project_key": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab7cDe0fGh3iJk6lMn9oPq2rS",
    "anthropic_key": "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab7cDe0fGh3iJk6lMn9oPq",
    "github_token": "ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c",
    "github_pat": "github_pat_11ABCDEFG0Ab3dEf6hIj9kLm_2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6lMn",
    "slack_token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "stripe_key": "sk_live_51Hab3dEf6hIj9kLm2nOp5qRs",
    "google_api_key": "AIzaSyAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zQ",
    "jwt": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4i"
        "fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    ),
    "private_key": (
        "-----BEGIN RSA PRIVATE KEY-----\n"
        "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi4Ks7BZgNQ2Y0Wb9xKzPLvwHsT\n"
        "-----END RSA PRIVATE KEY-----"
    ),
    "openssh_key": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "-----END OPENSSH PRIVATE KEY-----"
    ),
    "gcp_service_account": (
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n"}'
    ),
    "env_password": "DB_PASSWORD=s3cr3tP4ss",
    "env_quoted": 'export API_KEY="q8Zr2LmW9x"',
    "yaml_password": "  password: Tr0ub4dor&3",
}
KIND = {
    "openai_project_key": "openai_key",
    "github_pat": "github_token",
    "openssh_key": "private_key",
    "env_password": "assignment",
    "env_quoted": "assignment",
    "yaml_password": "assignment",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_kind_is_found_on_its_line(name: str) -> None:
    text = f"first line\nsecond line\n{SECRETS[name]}\nlast line\n"
    findings = scan(text, "stdin")
    assert [(f.kind, f.line, f.label) for f in findings] == [(KIND.get(name, name), 3, "stdin")]


def secret_part(name: str) -> str:
    """The part of a sample that is the secret (not its label or its key-block frame)."""
    text = SECRETS[name]
    if "BEGIN" in text:
        return text.replace("\\n", "\n").splitlines()[1]
    return text.replace(":", "=").split("=")[-1].strip().strip('"')


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_finding_never_holds_the_value(name: str) -> None:
    (finding,) = scan(SECRETS[name], "the prompt")
    shown, secret = f"{finding} {finding!r}", secret_part(name)
    assert not any(secret[i : i + 10] in shown for i in range(len(secret) - 9))


def test_the_sentence() -> None:
    findings = scan("ok\nAWS=AKIAZ7X3Q2LBM4HN5KTD\n", "stdin")
    assert str(findings[0]) == "stdin line 2 looks like an AWS access key"
    many = scan("\n".join(SECRETS[k] for k in ("github_token", "jwt", "stripe_key")), "x")
    assert describe(many) == (
        "x line 1 looks like a GitHub token and x line 2 looks like a JSON Web Token (and 1 more)"
    )
    assert str(scan("SECRET_KEY=k3yV4lue99", "file .env")[0]) == (
        "file .env line 1 looks like a secret assigned to SECRET_KEY"
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("AKIAIOSFODNN7EXAMPLE", id="aws-documented-sample"),
        pytest.param("XAKIAZ7X3Q2LBM4HN5KTD", id="aws-inside-a-word"),
        pytest.param("AIDAIT2UOQQY3AUEMOTO", id="aws-user-id-not-a-key"),
        pytest.param("sk-" + "a" * 48, id="openai-one-class"),
        pytest.param("ghp_" + "x" * 36, id="github-placeholder"),
        pytest.param("sk-test-key", id="short"),
        pytest.param('if line == "-----BEGIN RSA PRIVATE KEY-----":', id="pem-header-in-code"),
        pytest.param(
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIABAKCAQEAqKpRgnn6yq26U3yt5Y...fvY4+te\n",
            id="pem-shortened-sample",
        ),
        pytest.param("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", id="unsigned-jwt"),
        pytest.param("API_KEY=", id="empty"),
        pytest.param('PASSWORD=""', id="empty-quoted"),
        pytest.param("API_KEY=changeme", id="changeme"),
        pytest.param("TOKEN=<your-key>", id="angle-placeholder"),
        pytest.param("API_KEY=xxxxxxxxxxxx", id="xxx"),
        pytest.param("SECRET=${SECRET}", id="shell-reference"),
        pytest.param("PASSWORD=$(pass show db)", id="command-substitution"),
        pytest.param("API_KEY = os.environ['API_KEY']", id="os-environ"),
        pytest.param("TOKEN = os.getenv('TOKEN')", id="getenv"),
        pytest.param("SECRET_KEY = settings.SECRET_KEY", id="attribute"),
        pytest.param("password = get_password()", id="call"),
        pytest.param("    token=self._token,", id="keyword-argument"),
        pytest.param("    api_key: Optional[str]", id="annotation"),
        pytest.param("ACCESS_KEY = 'AWS_ACCESS_KEY_ID'", id="name-of-a-variable"),
        pytest.param('NOPASSWORD = "no-password-required"', id="words"),
        pytest.param("    token: OAuth2Token", id="type-name"),
        pytest.param("PASSWORD=hunter2 is a famous one", id="prose"),
        pytest.param("The password is the one on the sticky note.", id="prose-2"),
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scan(text, "the prompt") == []


def test_a_line_is_reported_once_by_its_most_specific_kind() -> None:
    findings = scan("OPENAI_API_KEY=" + SECRETS["openai_key"], "stdin")
    assert [f.kind for f in findings] == ["openai_key"]


def test_crlf_lines() -> None:
    findings = scan("A=1\r\nDB_PASSWORD=s3cr3tP4ss\r\n", "stdin")
    assert [(f.kind, f.line) for f in findings] == [("assignment", 2)]


def test_finding_is_plain_data() -> None:
    finding = Finding("jwt", "a JSON Web Token", "stdin", 4)
    assert str(finding) == "stdin line 4 looks like a JSON Web Token"


# -- speed: a hostile 1 MiB input must not stall the validator -------------------------------


@pytest.mark.parametrize(
    "unit",
    [
        "eyJ",
        "AKIA",
        "sk-proj-",
        "ghp_",
        "aws",
        "password=",
        "password=\n",
        "-----BEGIN PRIVATE KEY-----",
        "A_TOKEN: ",
        "a",
        "\n",
    ],
)
def test_hostile_megabyte_scans_quickly(unit: str) -> None:
    text = unit * ((1 << 20) // len(unit))
    started = time.perf_counter()
    scan(text, "stdin")
    redact(text[:65536])
    # Linear: about 1 s at worst (38,000 PEM headers) on a slow machine; a scan that went
    # back over the text per finding took minutes. The bound leaves room for a busy one.
    assert time.perf_counter() - started < 5.0


# -- redaction, for logs ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_redact_masks_every_kind(name: str) -> None:
    masked = redact(f"request failed: {SECRETS[name]} (retrying)")
    assert "[redacted]" in masked
    assert secret_part(name) not in masked


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("Authorization: Bearer sk-test-key-123", "Authorization: "),
        ("headers={'api-key': 'abc123def'}", "headers={'api-key': '"),
        ('{"api_key": "local-secret-value"}', '{"api_key": "'),
        ("password=hunter2", "password="),
    ],
)
def test_redact_masks_what_logs_say_about_keys(line: str, kept: str) -> None:
    masked = redact(line)
    assert masked.startswith(kept)
    assert "[redacted]" in masked
    assert line.split(kept[-3:] if len(kept) > 3 else kept)[-1][:6] not in masked.removeprefix(kept)


def test_redact_leaves_ordinary_lines() -> None:
    line = "HTTP Request: POST http://127.0.0.1:11434/api/chat 200 OK (prompt_tokens=12)"
    assert redact(line) == line
