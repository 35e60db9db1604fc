"""Command mode: a sentence turned into one shell command, run only with the user's yes.

Layer: a front end, a sibling of ``shell``, ``serve`` and ``batch`` (none imports
another, nor ``cortan.app``). ``cortan cmd`` and the REPL's ``/run`` both run
:class:`cortan.command.mode.CommandMode`: it asks the model through the engine's one
entry point for ``{"command", "explanation"}`` (a JSON schema, repaired once), has the
approval gate review the command, puts it to the person on the terminal (never on
stdout), and runs it in the user's shell with the terminal attached. docs/commands.md
describes it; ``cortan shell-init`` prints the key bindings that call it.

What it is handed is narrow: a function that asks the engine (the app's ``ask``, or the
REPL's, which keeps its conversation in step), one that numbers requests, the
approval gate and a terminal; ``cortan.app.make_command_mode`` wires them.
"""
