"""Memory kept per model name, bounded: a long-running process meets endless names.

Layer: core. The engine learns things per model (the window it sized, the window a
server named, how its tokens count, what its server said of it) and keeps them for the
process's life. In a terminal that is a handful of models; a gateway takes its model
names from its clients, and a script that sent 10,000 made-up names (or an
OpenAI-compatible server answering any name) grew every such table by 10,000 entries,
for as long as the gateway ran. :class:`Recent` keeps the ``limit`` keys set most
recently and lets go of the oldest: what it forgets is learned again when asked.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: Models (or model-and-topic keys) remembered per table: far more than a person or
#: an editor uses, few enough that made-up names cannot hold much (some 1 MB a table).
MODELS_KEPT = 1024


class Recent(dict[K, V]):
    """A dict of at most ``limit`` keys: setting a new one past it drops the oldest.

    Only ``d[key] = value`` and ``setdefault`` add keys (``update`` is not bounded:
    the engine does not use it on these tables).
    """

    def __init__(self, limit: int = MODELS_KEPT) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self:
            while len(self) >= self.limit:
                del self[next(iter(self))]
        super().__setitem__(key, value)

    def setdefault(self, key: K, default: V) -> V:
        if key not in self:
            self[key] = default
        return self[key]
