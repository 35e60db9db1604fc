"""Configuration: settings models, where files live, and API keys.

Layer: config. Imports pydantic-settings, platformdirs and keyring only; nothing
here knows about providers, the engine or the terminal.
"""
