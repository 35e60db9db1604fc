"""cortan: a terminal AI shell for Ollama and OpenAI-compatible models.

Importing the package must stay cheap: it holds the version only, so that
`cortan --version` answers before any library is loaded.
"""

__version__ = "0.1.0"
