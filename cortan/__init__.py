"""cortan: a terminal AI shell for Ollama and OpenAI-compatible models.

Importing the package must stay cheap: it holds the version, and one line that
keeps httpx's own command line out of every run. httpx imports it (click, rich's
console, progress, syntax and tables, pygments' lexers: tens of milliseconds)
whenever click is installed, and click is installed beside cortan by uvicorn
(``cortan serve``) and by many of the tools a user's environment already holds.
cortan never calls ``httpx.main``; a ``None`` in ``sys.modules`` makes that import
fail at once, and httpx then defines the stub it keeps for installs without click.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

__version__ = "0.1.0"
