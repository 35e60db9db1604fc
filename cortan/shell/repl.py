"""The interactive shell's loop: read a line, run a command or send it, show the answer.

Each prompt goes to the engine's one entry point exactly as ``cortan ask``'s does
(through :class:`cortan.shell.services.ShellServices`), and the answer renders
through the same views; how it ended comes back from the call, and the shell says
so (the footer, or the one-sentence error). While an answer streams, Ctrl-C
(SIGINT, since the terminal is back in cooked mode) cancels that answer's task:
the HTTP stream is closed, the partial answer is kept in the conversation marked
interrupted, and the prompt comes back. At the prompt, Ctrl-C clears the line;
on an empty line it says how to leave, and a second one leaves, as Ctrl-D does.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from rich.text import Text

from cortan.core.errors import CortanError
from cortan.core.events import ChatEnded, ChatFailed, ChatFinished
from cortan.core.requests import ChatRequest
from cortan.core.text import make_visible
from cortan.engine.guard import HINT
from cortan.render.sanitize import sanitize
from cortan.shell.commands import ExitShell, parse_line
from cortan.shell.conversation import Conversation
from cortan.shell.prompt import forget_line, keep_line, unwrap_block

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from rich.console import Console

    from cortan.shell.commands import CommandTable
    from cortan.shell.models_cache import ModelCache
    from cortan.shell.services import ShellServices

EXIT_HINT = "(Ctrl-D or /exit leaves the shell; Ctrl-C again to leave now)"


__all__ = ["ExitShell", "Repl", "footer"]


class Repl:
    """One interactive session: the prompt, the conversation, the running answer."""

    def __init__(
        self,
        services: ShellServices,
        console: Console,
        session: PromptSession[str],
        commands: CommandTable,
        models: ModelCache,
        conversation: Conversation | None = None,
    ) -> None:
        self.services = services
        self.console = console
        self.session = session
        self.commands = commands
        self.models = models
        self.conversation = conversation or Conversation()
        self._answer: asyncio.Task[ChatEnded] | None = None
        self._last_interrupt_empty = False

    # -- output ------------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self.console.width

    def dim(self, text: str) -> None:
        self.console.print(Text(sanitize(text), style="dim"))

    def error(self, text: str) -> None:
        # Errors quote names (models, sessions): nothing invisible may hide in them.
        self.console.print(Text(make_visible(text), style="red"))

    def say(self, text: str) -> None:
        self.console.print(Text(sanitize(text)))

    # -- the loop ----------------------------------------------------------------------

    async def run(
        self,
        first_input: str | None = None,
        *,
        banner: bool = True,
        setup: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Until Ctrl-D or /exit. ``first_input`` (piped text) starts the conversation.

        ``setup`` (the command line's ``--session``, ``--role``) runs before the banner,
        which then names the model it chose; what setup says is shown after the banner.
        """
        said = ""
        if setup is not None:
            self.console.begin_capture()
            try:
                await setup()
            finally:
                said = self.console.end_capture()
        self.models.start()
        if banner:
            self.dim(self.banner())
        if said:
            self.console.file.write(said)
            self.console.file.flush()
        try:
            await self._loop(first_input)
        finally:
            # A model list still loading gets a moment to close its connections.
            await asyncio.to_thread(self.models.join, 2.0)

    async def _loop(self, first_input: str | None) -> None:
        with self._sigint_cancels_answer():
            if first_input is not None:
                self.say(describe_piped(first_input))  # what started the conversation
                await self.send("", first_input)
            while True:
                try:
                    line = await self.session.prompt_async(handle_sigint=False)
                except KeyboardInterrupt:
                    if self._last_interrupt_empty:
                        return
                    self._last_interrupt_empty = True
                    self.dim(EXIT_HINT)
                    continue
                except EOFError:
                    return
                self._last_interrupt_empty = False
                try:
                    await self.handle(line)
                except ExitShell:
                    return
                except Exception as exc:  # a fault of cortan's: this line fails, not the shell
                    self._internal_error(exc)
                finally:
                    keep_line(self.session.history)

    def _internal_error(self, exc: Exception) -> None:
        """Say a fault that no sentence was written for, and go on: ending the shell lost
        what it held (the model chosen, files attached, the conversation on screen)."""
        import logging

        logging.getLogger(__name__).debug("internal error in the shell", exc_info=exc)
        reason = make_visible(str(exc))[:200]
        self.error(
            f"internal error: {type(exc).__name__}: {reason} "
            "(the shell goes on; run with --debug for details)"
        )

    def banner(self) -> str:
        from cortan import __version__

        try:
            model = str(self.services.resolve(self.conversation.model))
        except CortanError as exc:
            model = f"no usable model ({exc})"
        return f"cortan {__version__} · {model} · /help lists commands · Ctrl-D leaves"

    async def handle(self, line: str) -> None:
        """One entered line: a slash command, or text for the model."""
        line = unwrap_block(line)
        if not line.strip():
            return
        parsed = parse_line(line)
        if parsed.command is None:
            await self.send(parsed.text)
            return
        command = self.commands.get(parsed.command)
        if command is None:
            nearest = self.commands.suggest(parsed.command)
            hint = f"; did you mean /{nearest}?" if nearest else "; /help lists them"
            self.error(f"unknown command /{parsed.command}{hint}")
            return
        try:
            await command.handler(self, parsed.arg)
        except CortanError as exc:
            self.error(str(exc))

    async def send(self, prompt: str, stdin_text: str | None = None) -> ChatEnded | None:
        """Send one prompt with the conversation so far; render the answer as it streams."""
        if stdin_text is not None:
            from cortan.core.requests import Attachment

            self.conversation.pending.append(Attachment("Input", stdin_text.encode()))
        request = self.conversation.make_request(self.services.next_id(), prompt)
        ended = await self.run_request(request)
        if self._over_limit(prompt):
            # Refused for its size, a paste would be written whole to the history file
            # and read back at every start; Up still recalls it in this shell.
            forget_line(self.session.history)
        if isinstance(ended, ChatFailed) and ended.kind == "secret":
            # The guard refused what looks like a secret: ask, and only a yes sends it.
            if not await self.confirm_secrets(ended.message.removesuffix(HINT)):
                forget_line(self.session.history)
                self.dim("not sent: nothing left this machine, nor went into the history file")
                return None
            request = request._replace(request_id=self.services.next_id(), allow_secrets=True)
            ended = await self.run_request(request)
        self._report(ended)
        return ended

    def _over_limit(self, prompt: str) -> bool:
        return len(prompt.encode("utf-8", "surrogatepass")) > self.services.settings.max_input_bytes

    def _report(self, ended: ChatEnded) -> None:
        """One dim footer after an answer, or the sentence that says why there is none."""
        if isinstance(ended, ChatFinished):
            self.dim(footer(ended))
        elif isinstance(ended, ChatFailed) and ended.kind != "output_closed":
            self.error(ended.message)
            hint = AFTER_FAILURE.get(ended.kind, RETRY_HINT)
            if hint:
                self.dim(hint)

    async def confirm_secrets(self, found: str) -> bool:
        """Ask before what looks like a secret goes to a remote provider."""
        from prompt_toolkit import PromptSession

        self.error(found)
        ask: PromptSession[str] = PromptSession(
            input=self.session.input, output=self.session.output, enable_suspend=True
        )
        try:
            answer = await ask.prompt_async("Send it anyway? [y/N] ", handle_sigint=False)
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")

    async def run_request(self, request: ChatRequest) -> ChatEnded:
        """Run ``request``; Ctrl-C cancels the answer (its ending says so), not the shell."""
        from cortan.render.echo import quiet_typing

        answer = self._answer = asyncio.ensure_future(self.services.ask(request))
        try:
            with quiet_typing():  # keys typed meanwhile wait for the prompt, not in the answer
                ended = await asyncio.shield(answer)
        except asyncio.CancelledError:
            answer.cancel()  # the shell itself is being stopped: so is its answer
            raise
        finally:
            self._answer = None
        self.conversation.record(ended)
        return ended

    def cancel_answer(self) -> bool:
        """Stop the answer that is streaming, if any (what Ctrl-C does)."""
        if self._answer is None or self._answer.done():
            return False
        self._answer.cancel()
        return True

    @contextlib.contextmanager
    def _sigint_cancels_answer(self) -> Iterator[None]:
        from cortan.render.echo import quiet_control_keys

        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self.cancel_answer)
        except (NotImplementedError, RuntimeError, ValueError):
            yield  # not the main thread, or no signals here: Ctrl-C stays a key only
            return
        try:
            with quiet_control_keys():  # no "^C" drawn into the answer it stops
                yield
        finally:
            loop.remove_signal_handler(signal.SIGINT)


RETRY_HINT = "the conversation is unchanged; /retry tries again"
#: The dim line after a failure, where "/retry tries again" would not help: the same
#: request to the same model fails the same way.
AFTER_FAILURE = {
    "input": "",
    "secret": "",
    "capability": "the conversation is unchanged; /model NAME picks one that can, then /retry",
    # The same model again would be missing again (a /load of a conversation whose model
    # this server lacks, a model removed): pick one first, or pull it.
    "model_not_found": (
        "the conversation is unchanged; /model NAME picks one it has (/models lists them), "
        "then /retry"
    ),
}


def describe_piped(text: str) -> str:
    """The transcript's line for piped text: how much, and how it begins."""
    from cortan.core.text import format_size, one_line

    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    first = one_line(text.strip().split("\n", 1)[0], 60)
    count = "1 line" if lines == 1 else f"{lines} lines"
    return f"› piped text ({count}, {format_size(len(text.encode()))}): {first}"


def footer(event: ChatFinished) -> str:
    """One dim line after an answer: model, tokens in and out, speed, time."""
    usage, timings = event.usage, event.timings
    parts = [f"{event.provider}:{event.model}"]
    if usage.prompt_tokens is not None or usage.completion_tokens is not None:
        parts.append(f"{usage.prompt_tokens or 0} in / {usage.completion_tokens or 0} out")
    generating = timings.total - (timings.first_token or 0.0)
    if usage.completion_tokens and generating > 0:
        parts.append(f"{usage.completion_tokens / generating:.1f} tok/s")
    parts.append(f"{timings.total:.1f} s")
    return " · ".join(parts)
