#!/usr/bin/env python3
"""Chat with any of cortan's models through `cortan serve`, from a script, with the openai SDK.

    cortan serve &                                   # once; it prints its URL
    export CORTAN_TOKEN=$(cortan serve --print-token)
    examples/gateway-chat.py "Why is the sky blue?" "And at sunset?"

Each argument is one turn of the same conversation, answered in a stream. The model is
$CORTAN_MODEL (any cortan name or alias; empty for cortan's default), the gateway
$CORTAN_URL (default http://127.0.0.1:11435/v1). The request id the gateway answers with
(`X-Request-ID`) goes to stderr: the gateway's access log knows the request by it, and
`cortan sessions show ID` prints the whole conversation it is stored in (every turn of a
run is one conversation, as the gateway stores a client's chat). Exit codes: 0 answered,
1 the gateway or the model could not answer, 2 a usage error.
"""

from __future__ import annotations

import os
import sys

import openai


def main(turns: list[str]) -> int:
    token = os.environ.get("CORTAN_TOKEN", "")
    if not turns or not token:
        print("usage: CORTAN_TOKEN=... gateway-chat.py QUESTION [QUESTION...]", file=sys.stderr)
        return 2
    url = os.environ.get("CORTAN_URL", "http://127.0.0.1:11435/v1")
    client = openai.OpenAI(base_url=url, api_key=token, max_retries=1)
    messages: list[dict[str, str]] = []
    for question in turns:
        messages.append({"role": "user", "content": question})
        try:
            answer = ask(client, messages)
        except openai.APIError as exc:  # one line, as cortan itself says it
            print(f"gateway-chat.py: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 1
        messages.append({"role": "assistant", "content": answer})
    return 0


def ask(client: openai.OpenAI, messages: list[dict[str, str]]) -> str:
    """Stream one answer to stdout; return it whole, for the next turn's history."""
    raw = client.chat.completions.with_raw_response.create(
        model=os.environ.get("CORTAN_MODEL", ""),
        messages=messages,  # type: ignore[arg-type]  # plain dicts, as scripts write them
        stream=True,
    )
    print(f"request {raw.headers.get('x-request-id')}", file=sys.stderr)
    stream = raw.parse()
    if not isinstance(stream, openai.Stream):  # the server answered whole: show that
        whole = stream.choices[0].message.content or ""
        print(whole)
        return whole
    pieces = []
    for chunk in stream:
        text = chunk.choices[0].delta.content if chunk.choices else None
        if text:
            pieces.append(text)
            print(text, end="", flush=True)
    print()
    return "".join(pieces)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
