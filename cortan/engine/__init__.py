"""The engine: ``Chat.run`` and its stages (guard, context, model manager), and the bus.

Layer: engine. Imports providers, store, config and core; knows nothing of rich,
Typer or prompt-toolkit (import-linter contracts in pyproject.toml).
"""
