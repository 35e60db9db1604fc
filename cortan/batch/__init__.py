"""``cortan batch``: many prompts at once, resumable, over every healthy host (docs/batch.md).

Layer: front end, a sibling of the shell and the gateway. It is handed its services
(:mod:`cortan.batch.services`) by the composition root and runs every item through
the engine's one entry point.
"""
