"""Fake Ollama and OpenAI servers on 127.0.0.1 for tests and benchmarks.

They speak the real wire protocols over real sockets so that cortan's
providers and the upstream client libraries run unmodified, while each test
scripts replies, delays and faults (see `Reply`).
"""

from tests.servers.http import FakeCall, FakeServer, Recorded, Reply
from tests.servers.ollama import FakeOllama
from tests.servers.openai import FakeOpenAI

__all__ = ["FakeCall", "FakeOllama", "FakeOpenAI", "FakeServer", "Recorded", "Reply"]
