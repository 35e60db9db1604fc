"""Hostile HTTP on raw sockets: what uvicorn and httptools let through, and the gateway bounds.

Each case is a request a local script or page could send, over a real socket to the
real gateway: the status it must get, within a bounded time, with the connection
closed when the rest of what the client sends cannot be trusted; and never an
exception in the gateway's log (:func:`no_errors_logged`).
"""

from __future__ import annotations

import json
import logging
import select
import socket
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from cortan.serve.protocol import LINGER_QUIET, MAX_HEAD_BYTES
from cortan.serve.security import HostCheck
from tests.serve.conftest import TOKEN, Running

AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()
CHAT = b'{"model": "", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing hostile may become an exception in the gateway (uvicorn logs those)."""
    with caplog.at_level(logging.WARNING):
        yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


def connect(running: Running) -> socket.socket:
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def read_reply(sock: socket.socket, seconds: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response, within ``seconds``."""
    sock.settimeout(seconds)
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, f"the gateway closed the connection without answering: {data!r}"
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the gateway closes ``sock`` within ``seconds`` (anything unread is dropped)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if readable:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
    return False


def post(body: bytes, path: bytes = b"/v1/chat/completions", extra: bytes = b"") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH + extra
        + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )  # fmt: skip


def exchange(running: Running, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with closing(connect(running)) as sock:
        sock.sendall(request)
        return read_reply(sock)


def error_of(body: bytes) -> Any:
    error = json.loads(body)["error"]
    return error["message"] if isinstance(error, dict) else error


# -- the request head ---------------------------------------------------------------------


def send_until_refused(sock: socket.socket, piece: bytes, cap: int) -> int:
    """Send ``piece`` over and over until the gateway stops taking it: the bytes it took."""
    sock.settimeout(5)
    sent = 0
    try:
        while sent < cap:
            sock.sendall(piece)
            sent += len(piece)
    except OSError:  # reset, a broken pipe, or a gateway that no longer reads
        pass
    return sent


def test_a_request_head_over_the_limit_is_431_and_the_connection_closed(gateway: Running) -> None:
    with closing(connect(gateway)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * MAX_HEAD_BYTES)
        status, headers, body = read_reply(sock)
        assert status == 431 and headers["connection"] == "close"
        assert error_of(body) == (
            f"the request line and headers are over the gateway's {MAX_HEAD_BYTES} byte limit"
        )
        assert closed_within(sock, 3 + LINGER_QUIET)


def test_a_whole_head_over_the_limit_in_one_read_is_431(gateway: Running) -> None:
    """Counted only after it was parsed, a head that came whole in one read was let
    through: one of 120 KB was answered 200."""
    header = b"X-Long: " + b"a" * (MAX_HEAD_BYTES + 1024) + b"\r\n"
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n"
    with closing(connect(gateway)) as sock:
        sock.sendall(request)
        status, headers, _ = read_reply(sock)
        assert status == 431 and headers["connection"] == "close"


def test_a_body_past_the_head_limit_sent_with_its_head_is_no_head(gateway: Running) -> None:
    """Only the head is counted: the body that follows it in the same read is not."""
    content = "x" * (MAX_HEAD_BYTES * 2)
    body = json.dumps({"model": "", "messages": [{"role": "user", "content": content}]})
    status, _, reply = exchange(gateway, post(body.encode()))
    assert status == 200, reply


def test_a_header_without_end_is_cut_off(gateway: Running) -> None:
    """httptools alone buffered it all: 300 MB sent, 370 MB of the gateway's memory held."""
    cap = 256 << 20
    with closing(connect(gateway)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
        began = time.monotonic()
        assert send_until_refused(sock, b"a" * 65536, cap) < cap
        assert time.monotonic() - began < 10


def test_a_head_just_under_the_limit_is_answered(gateway: Running) -> None:
    header = b"X-Long: " + b"a" * (MAX_HEAD_BYTES - 1024) + b"\r\n"
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n"
    assert exchange(gateway, request)[0] == 200


def test_a_head_that_trickles_is_408_after_serve_body_timeout(
    gateway_factory: Any, ollama_env: object
) -> None:
    """Slowloris: a header line now and then used to hold the connection for ever."""
    running: Running = gateway_factory(body_timeout=0.5)
    with closing(connect(running)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        began = time.monotonic()
        reply = None
        while time.monotonic() - began < 5 and reply is None:
            sock.sendall(b"X-Drip: 1\r\n")
            if select.select([sock], [], [], 0.1)[0]:
                reply = read_reply(sock)
        assert reply is not None, "a trickling head was never cut off"
        status, headers, body = reply
        assert status == 408 and headers["connection"] == "close"
        assert "did not arrive within 0.5 s" in error_of(body)
        assert closed_within(sock, 3 + LINGER_QUIET)


def test_a_connection_that_never_speaks_is_closed_after_serve_keep_alive(
    gateway_factory: Any, ollama_env: object
) -> None:
    running: Running = gateway_factory(keep_alive=0.3)
    with closing(connect(running)) as sock:
        assert closed_within(sock, 5), "a silent connection was held open"


def test_a_slow_client_with_a_whole_head_still_gets_its_answer(gateway: Running) -> None:
    """The head's clock stops at its end: the body has serve.body_timeout of its own."""
    with closing(connect(gateway)) as sock:
        request = post(CHAT)
        for piece in (request[:20], request[20:-10], request[-10:]):
            sock.sendall(piece)
            time.sleep(0.05)
        assert read_reply(sock)[0] == 200


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"http://evil.example/v1/models", 421),  # the target names the host (RFC 9112 3.2.2)
        (b"http://evil.example:80/v1/models", 421),
        (b"http://127.0.0.1/v1/models", 200),
        (b"http://[::1]:11435/v1/models", 200),
    ],
)
def test_an_absolute_form_target_is_checked_by_its_own_host(
    gateway: Running, target: bytes, status: int
) -> None:
    request = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH + b"\r\n"
    assert exchange(gateway, request)[0] == status


@pytest.mark.parametrize(
    "hosts", [(b"evil.example", b"127.0.0.1"), (b"127.0.0.1", b"evil.example"), (b"127.0.0.1",) * 2]
)
def test_more_than_one_host_header_is_400(gateway: Running, hosts: tuple[bytes, ...]) -> None:
    head = b"".join(b"Host: " + host + b"\r\n" for host in hosts)
    status, _, body = exchange(gateway, b"GET /v1/models HTTP/1.1\r\n" + head + AUTH + b"\r\n")
    assert status == 400 and "more than one Host" in error_of(body)


@pytest.mark.parametrize(
    "host", ["[::1]evil", "[::1]:80evil", "localhost:evil", "127.0.0.1:8o", "localhost:²"]
)
def test_a_host_whose_port_is_not_a_port_is_421(gateway: Running, host: str) -> None:
    assert not HostCheck([], beyond_loopback=True).allows(host)
    request = b"GET /v1/models HTTP/1.1\r\nHost: " + host.encode("latin-1") + b"\r\n" + AUTH
    assert exchange(gateway, request + b"\r\n")[0] == 421


def test_hosts_with_ports_that_pass() -> None:
    check = HostCheck([], beyond_loopback=False)
    for host in ("localhost", "localhost:", "localhost:11435", "[::1]:", "[::1]:1", "LOCALHOST"):
        assert check.allows(host), host
    for host in ("localhost.", "evil.example", "127.0.0.1.", "[::1]:1:2", "127.0.0.1:123456"):
        assert not check.allows(host), host


# -- the body -------------------------------------------------------------------------------


def test_expect_100_continue_over_the_limit_is_413_at_once_and_closes(gateway: Running) -> None:
    """Before, the connection stayed open and the client's next request was read as the body."""
    with closing(connect(gateway)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH
            + b"Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n"
        )  # fmt: skip
        status, headers, body = read_reply(sock, 2)  # no 100 Continue first: the body is not read
        assert status == 413 and headers["connection"] == "close"
        assert "serve.max_body_bytes" in error_of(body)
        assert closed_within(sock, 3 + LINGER_QUIET)


def test_a_chunked_body_over_the_limit_is_413_and_the_rest_is_not_read(
    gateway_factory: Any, ollama_env: object
) -> None:
    running: Running = gateway_factory(max_body_bytes=64 << 10)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH
    with closing(connect(running)) as sock:
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" + b"8000\r\n" + b" " * 0x8000
                     + b"\r\n" + b"8001\r\n" + b" " * 0x8001 + b"\r\n")  # fmt: skip
        status, headers, _ = read_reply(sock)
        assert status == 413 and headers["connection"] == "close"
        cap = 256 << 20  # before, the gateway read and dropped as much as was sent
        assert send_until_refused(sock, b"4000\r\n" + b" " * 0x4000 + b"\r\n", cap) < cap


def test_a_compressed_body_is_415_not_inflated(gateway: Running) -> None:
    import gzip

    bomb = gzip.compress(b" " * (64 << 20))  # 64 MiB of spaces in some 64 KiB
    status, headers, body = exchange(gateway, post(bomb, extra=b"Content-Encoding: gzip\r\n"))
    assert status == 415 and "uncompressed" in error_of(body)
    assert headers["connection"] == "close"


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/api/chat", b"/api/generate"])
@pytest.mark.parametrize(
    "nested", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000]
)
def test_json_nested_too_deeply_is_400(gateway: Running, path: bytes, nested: bytes) -> None:
    """json's scanner recursed past Python's limit: a 500 and a traceback in the log before."""
    status, _, body = exchange(gateway, post(nested, path))
    assert status == 400 and error_of(body) == "the request body is JSON nested too deeply"


@pytest.mark.parametrize(
    ("path", "options"),
    [
        (b"/v1/chat/completions", b'"temperature": NaN'),
        (b"/v1/chat/completions", b'"temperature": Infinity'),
        (b"/v1/chat/completions", b'"top_p": 1e999'),
        (b"/v1/chat/completions", b'"max_tokens": 99999999999999999999999999999999'),
        (b"/api/chat", b'"options": {"seed": -Infinity}'),
        (b"/api/chat", b'"options": {"num_predict": 1e400}'),
    ],
)
def test_numbers_no_upstream_can_read_are_400(
    gateway: Running, path: bytes, options: bytes
) -> None:
    """Python's json takes NaN and 1e999; sent upstream they failed the request as a 502."""
    body = CHAT[:-1] + b", " + options + b"}"
    status, _, reply = exchange(gateway, post(body, path))
    assert status == 400 and "finite number" in error_of(reply)


# -- the lingering close after a refusal -------------------------------------------------


def test_a_client_that_sends_its_whole_body_before_reading_gets_the_413(
    gateway_factory: Any, ollama_env: object
) -> None:
    """Python's urllib sends all of a body before it reads, and gives up when a write
    fails: closed at once behind the 413, the gateway reset the connection, and 7 of 10
    such clients saw "Broken pipe" at 2 MB, 10 of 10 at 32 MB, never the status."""
    import urllib.error
    import urllib.request

    running: Running = gateway_factory(max_body_bytes=1 << 20)
    statuses = []
    for _ in range(3):
        request = urllib.request.Request(
            running.url + "/v1/chat/completions", data=b" " * (32 << 20),
            headers={**running.headers, "Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        statuses.append(refused.value.code)
        assert "serve.max_body_bytes" in refused.value.read().decode()
    assert statuses == [413, 413, 413]


def test_a_head_still_arriving_when_refused_reads_431_then_a_clean_end(gateway: Running) -> None:
    """The gateway ends its side, and reads on, so the client gets the 431 and a FIN:
    closed at once with bytes unread, the socket was reset."""
    import threading

    got: list[bytes] = []
    failed: list[OSError] = []
    with closing(connect(gateway)) as sock:

        def read_all() -> None:
            try:
                while more := sock.recv(65536):
                    got.append(more)
            except OSError as exc:
                failed.append(exc)

        reader = threading.Thread(target=read_all)
        reader.start()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
        for _ in range(128):  # 8 MiB of a header, far past the 64 KiB limit
            sock.sendall(b"a" * 65536)
        reader.join(10 + LINGER_QUIET)
        assert not reader.is_alive(), "the gateway did not close after the client stopped"
    assert failed == []
    assert b"".join(got).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_a_request_http_cannot_parse_is_400_with_one_sentence(gateway: Running) -> None:
    """uvicorn's was a plain-text 'Invalid HTTP request received.' and a close at once."""
    status, headers, body = exchange(
        gateway, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n"
    )
    assert status == 400 and headers["connection"] == "close"
    assert error_of(body) == "the request is not valid HTTP/1.1"


@pytest.mark.parametrize("apart", [False, True], ids=["with-head", "after-head"])
def test_a_chunked_body_http_cannot_parse_is_400_with_one_sentence(
    gateway: Running, apart: bool
) -> None:
    """A bad chunk size, found while the request's body is read: the refusal is that
    request's answer (a first take at the lingering close answered it with nothing)."""
    head = post(b"", extra=b"Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
    with closing(connect(gateway)) as sock:
        sock.sendall(head)
        if apart:  # the request's cycle has begun reading its body
            time.sleep(0.2)
        sock.sendall(b"zz\r\nabc\r\n0\r\n\r\n")
        status, headers, body = read_reply(sock)
        assert status == 400 and headers["connection"] == "close"
        assert error_of(body) == "the request is not valid HTTP/1.1"
        assert closed_within(sock, 3 + LINGER_QUIET)


# -- what the red-team pass of 2026-12-07 found -------------------------------------------


@pytest.mark.parametrize("codings", [b"gzip, chunked", b"x-made-up, chunked", b"deflate ,Chunked"])
def test_a_transfer_coding_other_than_chunked_is_501(gateway: Running, codings: bytes) -> None:
    """httptools read ``gzip, chunked`` as chunked alone: a proxy that honours the codings
    would have seen another body than the gateway did (``chunked, chunked`` is the
    parser's own 400)."""
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(CHAT), CHAT)
    status, headers, body = exchange(gateway, head + b"Transfer-Encoding: " + codings
                                     + b"\r\n\r\n" + chunk)  # fmt: skip
    assert status == 501 and headers["connection"] == "close"
    assert "plain or chunked" in error_of(body)


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        (b"/v1/chat/completions", b'{"model": "x\\udc01", "messages": []}', "`model`"),
        (b"/api/chat", b'{"model": "x\\udc01", "messages": []}', "`model`"),
        (b"/v1/chat/completions", CHAT[:-1] + b', "stop": ["a", "\\ud800"]}', "`stop[1]`"),
        (b"/api/chat", CHAT[:-1] + b', "format": {"type": "object", "properties": '
         b'{"\\uDFFF": {"type": "string"}}}}', "a key of `format.properties`"),
        (b"/api/show", b'{"model": "\\ud800"}', "`model`"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_anywhere_is_400_naming_where(
    gateway: Running, path: bytes, body: bytes, where: str
) -> None:
    """In a model name it failed the store: a 500, or a streamed answer that never came;
    in ``stop`` or a schema, the request upstream failed and was blamed on the model's
    server (502)."""
    status, _, reply = exchange(gateway, post(body, path))
    assert status == 400, reply
    assert error_of(reply).startswith(f"the request body holds a lone surrogate in {where}:")


def test_a_surrogate_pair_is_a_character(gateway: Running) -> None:
    body = b'{"model": "", "messages": [{"role": "user", "content": "hi \\ud83d\\ude00"}]}'
    assert exchange(gateway, post(body))[0] == 200


@pytest.mark.parametrize("model", ["ollama:x\ncortan serve: forged", "m\u2028x", "m\x1b[31m"])
def test_a_model_name_with_a_line_break_or_control_is_400(gateway: Running, model: str) -> None:
    """A newline in the name started a forged line in the access log."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    status, _, reply = exchange(gateway, post(body.encode()))
    assert status == 400 and "control character or a line break" in error_of(reply)


@pytest.mark.parametrize("text", [None, 1, {"a": 1}, ["x"]])
def test_a_text_part_whose_text_is_not_a_string_is_400(
    gateway: Running, ollama_env: Any, text: object
) -> None:
    """``str()`` of it was sent: the model was asked ``None`` or ``{'a': 1}``."""
    content = [{"type": "text", "text": text}, {"type": "text", "text": "b"}]
    body = json.dumps({"model": "", "messages": [{"role": "user", "content": content}]})
    status, _, reply = exchange(gateway, post(body.encode()))
    assert status == 400 and "content part 1 has no `text` string" in error_of(reply)
    assert not [r for r in ollama_env.requests if r.path == "/api/chat"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [0, -1])
def test_openai_max_tokens_under_one_is_400(gateway: Running, field: str, value: int) -> None:
    """It became Ollama's ``num_predict`` -1 (no limit) or 0 (an empty answer)."""
    status, _, reply = exchange(gateway, post(CHAT[:-1] + b', "%s": %d}' % (field.encode(), value)))
    assert status == 400 and error_of(reply) == f"`{field}` must be at least 1"


@pytest.mark.parametrize("model", [b"null", b"[]", b"{}", b'""', b"1"])
def test_api_show_without_a_model_name_is_400(gateway: Running, model: bytes) -> None:
    """It showed the default model's details, as if that had been asked for."""
    status, _, reply = exchange(gateway, post(b'{"model": ' + model + b"}", b"/api/show"))
    assert status == 400 and error_of(reply) == "`model` must name the model to show"
