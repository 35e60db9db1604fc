"""Running an approved command in the user's shell, with the terminal attached.

Layer: command. The command runs as ``$SHELL -c COMMAND`` (/bin/sh when $SHELL is
unset or not runnable) in the current folder, with cortan's stdin, stdout and stderr,
so pagers, editors and password prompts work. It reports the status the shell would
(128 + the signal for a command a signal stopped).

The command is a process group of its own, handed the terminal (made its foreground
group) while it runs, as a shell does for its foreground job. That is what lets cortan
stop it whole, pipelines and what it started in the background included:

* SIGTERM and SIGHUP that stop cortan (they arrive as the task's cancellation, naming
  the signal: :mod:`cortan.core.stops`) are passed on to the group; what still runs
  after :data:`_GRACE` seconds is killed. cortan exits only then, 143 or 129.
* Ctrl-C reaches the command alone, once: the terminal sends it to the foreground
  group, which cortan is not in while the command runs. A SIGINT sent to cortan itself
  (``kill -INT``, or Ctrl-C with no terminal to hand over) is passed on to the group.
* Ctrl-Z stops the command: cortan takes the terminal back and stops its own job, so
  the shell says it stopped, and ``fg`` continues both.

Not when cortan is one part of a pipeline on a terminal (``cortan cmd … | less``: its
stdin or stdout is not the terminal): handed the terminal, the command would push the
pipeline's other parts into the background, and a pager reading its keys would be
stopped. The command then stays in cortan's group, as it did before, with the terminal
the job's; a SIGTERM or SIGHUP is passed on to the shell that runs it (not to what that
shell started), and Ctrl-C reaches the whole job from the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator

_GRACE = 2.0  # seconds a command has to exit once handed SIGTERM or SIGHUP
_UNKNOWN = 255 << 8  # a wait status for a command reaped elsewhere: exit status 255


async def run_in_shell(
    shell_path: str,
    command: str,
    *,
    own_sigint: bool = True,
    ended: Callable[[int], None] | None = None,
) -> int:
    """The exit status of ``command`` run by ``shell_path``.

    ``own_sigint``: pass a SIGINT sent to cortan on to the command (``cortan cmd``);
    the REPL has its own handler, which has no answer to cancel then. ``ended`` is told
    the status however the command ended, stopped with cortan by SIGTERM or SIGHUP
    included (the decision log then says how it ended instead of nothing).
    """
    jobs: list[_Job] = []  # held from before the start: a Ctrl-C then must not stop cortan
    with _sigint_passed_on(jobs) if own_sigint else contextlib.nullcontext():
        jobs.append(job := _Job.start(shell_path, command))
        try:
            status = await job.wait()
        except asyncio.CancelledError as exc:
            from cortan.core.stops import stopping_signal

            stopped = await job.stop(stopping_signal(exc) or signal.SIGTERM)
            if ended is not None and stopped is not None:
                ended(_exit_status(stopped))
            raise
        finally:
            job.release()
    if ended is not None:
        ended(_exit_status(status))
    return _exit_status(status)


def _exit_status(wait_status: int) -> int:
    """The status a shell reports: 128 + the signal for a command a signal ended."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


class _Job:
    """The command's process group, its wait statuses read on a thread of its own."""

    def __init__(
        self, process: subprocess.Popen[bytes], terminal: int | None, *, grouped: bool
    ) -> None:
        self.process = process
        self.pid = process.pid  # also the group's id, when ``grouped``
        self.grouped = grouped
        self.terminal = terminal  # the controlling terminal handed over, or None
        self._changes: asyncio.Queue[int] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._watch, args=(loop,), daemon=True).start()

    @classmethod
    def start(cls, shell_path: str, command: str) -> _Job:
        terminal = _foreground_terminal()
        # A group of its own, except in a pipeline on a terminal (see the module's doc);
        # without a terminal (cron, CI) nothing else contends for one: a group still.
        grouped = terminal is None or _alone_in_job()
        if not grouped and terminal is not None:
            os.close(terminal)
            terminal = None
        try:
            group = 0 if grouped else None  # None: cortan's own group
            process = subprocess.Popen([shell_path, "-c", command], process_group=group)
        except OSError as exc:
            if terminal is not None:
                os.close(terminal)
            from cortan.core.errors import CortanError

            raise CortanError(f"cannot run {shell_path}: {exc.strerror}") from None
        if terminal is not None:
            _hand_terminal(terminal, process.pid)
        return cls(process, terminal, grouped=grouped)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every stop and the exit (waitpid with WUNTRACED: asyncio's own watcher sees
        only the exit, and a Ctrl-Z'd command would leave cortan waiting on a job that
        holds the terminal and never ends)."""
        while True:
            try:
                _, status = os.waitpid(self.pid, os.WUNTRACED)
            except ChildProcessError:
                status = _UNKNOWN
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(self._changes.put_nowait, status)
            if not os.WIFSTOPPED(status):
                return

    async def wait(self) -> int:
        """The command's wait status once it has exited; stops are dealt with on the way."""
        while True:
            status = await self._changes.get()
            if not os.WIFSTOPPED(status):
                self.process.returncode = os.waitstatus_to_exitcode(status)
                return status
            self._stopped(os.WSTOPSIG(status))

    def _stopped(self, signum: int) -> None:
        if self.terminal is None:
            return  # nobody to give a terminal back to: it stays stopped, as any process
        if signum in (signal.SIGTTIN, signal.SIGTTOU) and self._has_terminal(self.pid):
            self.signal(signal.SIGCONT)  # it read before it was handed the terminal
            return
        # Ctrl-Z: stop cortan's job as the terminal would have stopped it. In an
        # orphaned group (no job control above: nobody could continue it) the kernel
        # drops the SIGTSTP, and the command goes on at once.
        _set_foreground(self.terminal, os.getpgrp())
        os.killpg(os.getpgrp(), signal.SIGTSTP)
        if self._has_terminal(os.getpgrp()):  # continued in the foreground (fg)
            _set_foreground(self.terminal, self.pid)
        self.signal(signal.SIGCONT)

    def _has_terminal(self, pgid: int) -> bool:
        assert self.terminal is not None
        try:
            return os.tcgetpgrp(self.terminal) == pgid
        except OSError:
            return False

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the whole group, while it is still cortan's to signal."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if self.grouped:
                    os.killpg(self.pid, signum)
                else:
                    os.kill(self.pid, signum)

    async def stop(self, signum: int) -> int | None:
        """Pass ``signum`` on, give the command :data:`_GRACE` seconds, then kill what is
        left of the group (at once on a second signal).

        The shell exiting is not the end: what it started in the background and that
        ignores the signal is still in the group, holding cortan's stdout for whoever
        reads it. The group is waited for and killed, not just its leader; its id cannot
        go to another process while any of it lives. The command's wait status, once known
        (None when a second signal cut the wait short)."""
        status: int | None = None
        self.signal(signum)
        self.signal(signal.SIGCONT)  # a stopped command must run to act on it
        try:
            async with asyncio.timeout(_GRACE):
                status = await self.wait()
                # Polled: what is left was handed to init, whose ends nobody here hears.
                while self.grouped and _group_alive(self.pid):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pass
        finally:
            if self.grouped:  # its leader reaped or not, the group's id is still its own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
            else:
                self.signal(signal.SIGKILL)
        if status is None:  # killed: its status comes from the watching thread at once
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(self.wait(), 1.0)
        return status

    def release(self) -> None:
        """Take the terminal back (the command's group may be gone or may have kept it)."""
        if self.terminal is None:
            return
        with contextlib.suppress(OSError):
            _set_foreground(self.terminal, os.getpgrp())
        os.close(self.terminal)
        self.terminal = None


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. A zombie does not: its parent
    gone, it waits for init to reap it, which a container's first process may never do."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        names = os.listdir("/proc")
    except OSError:
        return True  # no /proc (macOS): a zombie counts, the grace bounds the wait
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


def _alone_in_job() -> bool:
    """Whether cortan's stdin and stdout are the terminal: not a part of a pipeline,
    whose other parts share its process group and its turn at the terminal."""
    try:
        return os.isatty(0) and os.isatty(1)
    except OSError:
        return False


def _foreground_terminal() -> int | None:
    """cortan's terminal, opened, when cortan's group is its foreground: to hand to the
    command and take back with. None without a terminal (cron, CI, setsid) or when
    cortan runs in the background."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _hand_terminal(fd: int, pgid: int) -> None:
    """Make ``pgid`` the terminal's foreground group, as a shell does for its job."""
    with contextlib.suppress(OSError):
        _set_foreground(fd, pgid)
        os.killpg(pgid, signal.SIGCONT)  # if it read the terminal first and stopped


def _set_foreground(fd: int, pgid: int) -> None:
    # From the background, tcsetpgrp stops the caller with SIGTTOU unless it is blocked.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        os.tcsetpgrp(fd, pgid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _sigint_passed_on(jobs: list[_Job]) -> Iterator[None]:
    loop = asyncio.get_running_loop()

    def pass_on() -> None:
        for job in jobs:
            if job.grouped:  # else it shares cortan's group: the terminal's Ctrl-C got it
                job.signal(signal.SIGINT)

    try:
        # A handler, not SIG_IGN: a handled signal is reset to the default in the child.
        loop.add_signal_handler(signal.SIGINT, pass_on)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
