"""Start-up with the cyclic garbage collector paused, until the first provider is made.

Importing the stack builds a hundred thousand long-lived container objects (pydantic's
models and schemas above all: the settings, Typer's adapters; the providers' SDKs
before cortan spoke their wires itself). The collector runs a young pass
every 700 new containers and, every hundred of those, a full pass over all of
them, so start-up pays again and again to learn that nothing it built is garbage:
about 0.1 s of the 0.7 s before an OpenAI request here (issue 7). The whole of a
``cortan ask`` leaves about a thousand objects in cycles, so nothing is gained
by collecting before the work is loaded.

The entry point pauses the collector; making the first provider (its HTTP client,
the last large import) resumes it, as does the end of the shell's background load of
the model list, after freezing what start-up built: the frozen objects are never
traversed again, so a long REPL session's full passes do not walk the SDK's types
either. Commands that never make a provider (``logs``, ``sessions``, ``config``)
finish with the collector paused: they are short, and reference counting still
frees everything that is not in a cycle.

Only :func:`cortan.cli.main` pauses, so code that imports cortan (the tests, a
library user) keeps its collector as it was; :func:`resume_collector` does nothing
unless :func:`pause_collector` ran.
"""

from __future__ import annotations

import gc

_paused = False


def pause_collector() -> None:
    """Stop automatic collection for the rest of start-up."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collector() -> None:
    """End start-up: freeze what it built, and collect automatically again."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
