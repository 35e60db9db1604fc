"""A real pseudo-terminal for the render tests: what cortan writes to it is read back."""

from __future__ import annotations

import fcntl
import os
import struct
import termios


class Tty:
    """A real pseudo-terminal of a given size: what is written to ``file`` is read back."""

    def __init__(self, columns: int = 60, rows: int = 20) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # bytes as written: no "\n" turned into "\r\n"
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.file = open(slave, "w", encoding="utf-8")  # noqa: SIM115  (closed by close())
        os.set_blocking(self.master, False)

    def read(self) -> str:
        chunks = []
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()

    def close(self) -> None:
        self.file.close()
        os.close(self.master)
