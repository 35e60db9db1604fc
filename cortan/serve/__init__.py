"""``cortan serve``: the local gateway, a front end beside the shell.

Layer: front end (a sibling of ``cortan.shell``: neither imports the other, nor
``cortan.app``; the composition root hands the gateway its services through
:class:`cortan.serve.services.GatewayServices`). Every request, whatever the
protocol, becomes one :class:`cortan.core.requests.ChatRequest` run through the
engine's one entry point, so aliases, routing over hosts, breakers, fallback, the
secret guard and the store apply to editors and scripts as they do at the prompt.

    services.py   what the gateway is handed (a Protocol) and the watcher it registers
    gateway.py    the ASGI application: routes, admission, the life of one chat
    security.py   token, Host header, CORS origins, request ids: the door of every request
    limits.py     bounded queues per upstream provider (429 + Retry-After beyond them)
    relay.py      one request's events on their way to its client, with back-pressure
    replies.py    JSON bodies, errors in each API's shape, reading a bounded body
    openai.py     /v1/chat/completions (SSE and whole), /v1/models
    ollama.py     /api/chat (NDJSON and whole), /api/tags, /api/version
    websocket.py  /ws: chats as events, cancel from the client
    metrics.py    Prometheus metrics with the official client, on a private registry
    server.py     uvicorn on a socket bound here; signals, draining, exit

Starlette routes and uvicorn serves (httptools, wsproto, uvloop: server.py says why).
Heavy imports (starlette, uvicorn, aiohttp, prometheus_client) happen only when
``serve`` runs.
"""
