"""The tool loop's cost (issue 18): a request with tools, against the same without.

In one process, against a loopback fake Ollama: the median wall time of a plain
request (the baseline), of the same request offered the four built-in tools but
calling none (what offering them costs: the specs, the loop's bookkeeping), and of
a request whose first answer calls ``read_file`` (allowlisted) and whose second
answers (one round: the gate, the read, the wrapped result, a second model
request). The third is expected near 2× the baseline, since it makes two requests;
what is over 2× is the loop's own cost.

    python -m tests.benchmarks.run --only tools
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.measure import Figure, median, ms, report
from tests.servers import FakeCall, FakeOllama, Reply

REPEAT = 40


async def _measure(server: FakeOllama, repeat: int, note: Path) -> dict[str, list[float]]:
    from cortan.app import App
    from cortan.config.settings import ProviderConfig, Settings
    from cortan.core.requests import ChatRequest
    from cortan.engine.approval import ApprovalGate

    settings = Settings(
        default_model="ollama:llama3.2:latest",
        providers={"ollama": ProviderConfig(kind="ollama", hosts=[server.url])},
        approval={"allow_tools": ["read_file"]},  # type: ignore[arg-type]
    )
    app = App.build(settings)
    app.use_tools(ApprovalGate(settings.approval))
    times: dict[str, list[float]] = {"plain": [], "offered": [], "one round": []}
    calling = Reply(pieces=[], tool_calls=[FakeCall("read_file", {"path": str(note)})])
    try:
        for index in range(repeat + 1):  # the first of each is a warm-up
            for name in times:
                if name == "one round":
                    server.queue(calling, Reply())
                request = ChatRequest(index, "hi", tools=name != "plain")
                begun = time.perf_counter()
                await app.ask(request)
                if index:
                    times[name].append(time.perf_counter() - begun)
    finally:
        await app.aclose()
    return times


def main(repeat: int = REPEAT) -> dict[str, Any]:
    with FakeOllama() as server, tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp, "note.txt")
        note.write_text("a short note\n" * 20)
        times = asyncio.run(_measure(server, repeat, note))
    plain = ms(median(times["plain"]))
    figures = [
        Figure("plain request", plain, "ms"),
        Figure("tools offered, none called", ms(median(times["offered"])), "ms", plain, "plain"),
        Figure("one round of read_file", ms(median(times["one round"])), "ms", plain, "plain"),
    ]
    return report("tool loop (bench_tools)", figures, repeat=repeat)


if __name__ == "__main__":
    main()
