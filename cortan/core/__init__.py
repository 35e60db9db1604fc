"""The shared vocabulary: the values every layer of cortan trades in.

Layer: core, the floor. Messages, requests, events, usage, model info, text
helpers and the error tree live here, and this package imports nothing of cortan
above it (an import-linter contract in the lint session proves it), so the store,
the renderer, the providers and the engine can all speak of the same things
without importing one another.

    messages.py   Message, Usage, ModelInfo: what a conversation and a model are
    requests.py   ChatRequest (what a front end asks), Attachment, TextAttachment
    events.py     what a request's run tells its observers, and how it ended
    text.py       decoding and cleaning outside text, sizes for humans
    errors.py     every error a user can see, as one tree
    startup.py    the cyclic collector paused while start-up builds the stack
    stops.py      which signal stopped the work, carried on a task's cancellation
    recent.py     Recent: a dict of the keys set last, for what is learned per model
"""
