"""The gateway's stderr, written by a thread of its own: a log nobody reads never stops it.

Layer: serve. ``cortan serve`` writes a line per request to stderr. An editor or a
service manager that starts it with stderr on a pipe and never reads that pipe
fills it after about 430 requests (64 KiB); the next write then blocked the event
loop's thread, for good: every request hung, and so did SIGTERM and Ctrl-C, whose
handlers run on that thread. Here the loop only hands each write to a queue; a
thread writes them to the file descriptor, and when the pipe is full it is that
thread that waits. What the queue cannot hold (:data:`MAX_PENDING` characters) is
dropped, counted, and said once the pipe moves again; so is a line the file
refuses (a full disk), and the lines after it are still tried. A reader that has
gone (EPIPE) ends the writing; serving goes on (the store keeps each request).

The thread writes with ``os.write`` on the descriptor, not through ``sys.stderr``'s
buffer: a daemon thread blocked while holding that buffer's lock would stop the
interpreter's own exit.
"""

from __future__ import annotations

import atexit
import io
import os
import queue
import threading
import time
from typing import TextIO

from cortan.core.text import count_of

MAX_PENDING = 1 << 20  # characters waiting for the pipe before lines are dropped
EXIT_WAIT = 2.0  # seconds the last lines get at exit to reach a pipe that moves


class StderrHandOff(io.TextIOBase):
    """A text stream in place of ``stream`` whose writes never block the caller."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream  # held: freed, it would close the descriptor written to
        self._fd = stream.fileno()
        self._encoding = stream.encoding or "utf-8"
        self._tty = stream.isatty()
        self._pending: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._size = 0  # characters queued and not yet written
        self._dropped = 0  # writes dropped since the last that got through
        self._why = ""  # why the last of them was
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._gone = False  # the reader closed the pipe
        threading.Thread(target=self._run, name="cortan-stderr", daemon=True).start()
        atexit.register(self.wait, EXIT_WAIT)

    @property
    def encoding(self) -> str:  # type: ignore[override]  # (read-only in io's C class)
        return self._encoding

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            if self._gone:
                return len(text)
            if self._size + len(text) > MAX_PENDING:
                self._drop("stderr was not being read")
                return len(text)
            self._size += len(text)
            self._idle.clear()
        self._pending.put(text)
        return len(text)

    def flush(self) -> None:
        """Nothing to wait for: the thread writes as soon as the pipe takes it."""

    def wait(self, timeout: float) -> bool:
        """Wait until what was written so far is out (at exit); False if the pipe is stuck."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            text = self._pending.get()
            with self._lock:
                dropped, self._dropped = self._dropped, 0
            said = text
            if dropped:
                said = f"cortan serve: {count_of(dropped, 'log line')} dropped: {self._why}\n{text}"
            written = self._write(said.encode(self._encoding, "backslashreplace"))
            with self._lock:
                if not written:  # said with the next line that gets through
                    self._dropped += dropped
                self._size -= len(text)
                if self._size == 0:
                    self._idle.set()

    def _write(self, data: bytes) -> bool:
        """Write ``data`` whole; False if it was dropped (the reader gone, a full disk)."""
        while data and not self._gone:
            try:
                data = data[os.write(self._fd, data) :]
            except InterruptedError:
                continue
            except BlockingIOError:  # someone made the descriptor non-blocking: wait
                time.sleep(0.05)
            except BrokenPipeError:  # nobody will read it any more
                with self._lock:
                    self._gone = True
            except OSError as exc:  # a full disk: this line is lost, the next may fit
                with self._lock:
                    self._drop(f"stderr could not be written ({exc.strerror})")
                return False
        return not data

    def _drop(self, why: str) -> None:
        """Count a line lost (the lock held), to be said before the next that is written."""
        self._dropped += 1
        self._why = why
