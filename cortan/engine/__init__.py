"""The engine: event bus, events, input validator, context manager, model manager.

Layer: engine. Imports providers and config; knows nothing of rich, Typer or
prompt-toolkit.
"""
