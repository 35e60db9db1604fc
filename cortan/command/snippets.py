"""``cortan shell-init``: key bindings that turn the words on the command line into a command.

Layer: command (text only). The key, Alt-E by default, calls ``cortan cmd --print``
with the line typed so far and puts the command it prints back in the line buffer,
cursor at its end: nothing runs until the user reads it and presses Enter. Alt-E is
free in bash's and zsh's default emacs keymaps, reachable on every keyboard and
terminal (Esc then E where Alt is not Meta), and the key aichat's integration uses,
so hands may know it already; in fish it replaces "edit in $EDITOR", which stays on
Alt-V. ``--key`` binds another key (in the shell's own notation).

stdin is ``/dev/null`` for the call (cortan must never wait on the line editor's
terminal); stderr stays on the terminal, so a refusal or a failure is read there.
"""

from __future__ import annotations

SHELLS = ("bash", "zsh", "fish")
DEFAULT_KEYS = {"bash": r"\ee", "zsh": r"\ee", "fish": r"\ee"}

_BASH = r"""# cortan: {key} turns the words on the command line into a command (docs/commands.md)
__cortan_cmd() {{
  local words=$READLINE_LINE command
  [[ -n ${{words//[[:space:]]/}} ]] || return 0
  command=$(command cortan cmd --print --shell {shell} -- "$words" </dev/null) || return 0
  [[ -n $command ]] || return 0
  READLINE_LINE=$command
  READLINE_POINT=${{#READLINE_LINE}}
}}
bind -x '"{key}": __cortan_cmd'
"""

_ZSH = r"""# cortan: {key} turns the words on the command line into a command (docs/commands.md)
__cortan_cmd() {{
  local command
  if [[ -n ${{BUFFER//[[:space:]]/}} ]]; then
    command=$(command cortan cmd --print --shell {shell} -- "$BUFFER" </dev/null)
    if [[ $? -eq 0 && -n $command ]]; then
      BUFFER=$command
      CURSOR=${{#BUFFER}}
    fi
  fi
  zle reset-prompt
}}
zle -N __cortan_cmd
bindkey '{key}' __cortan_cmd
"""

_FISH = r"""# cortan: {key} turns the words on the command line into a command (docs/commands.md)
function __cortan_cmd
    set -l words (commandline)
    if string length -q -- (string trim -- "$words")
        set -l command (command cortan cmd --print --shell {shell} -- "$words" \
            </dev/null | string collect)
        and test -n "$command"
        and commandline -r -- $command
    end
    commandline -f repaint
end
bind {key} __cortan_cmd
"""

_TEMPLATES = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}


def snippet(shell: str, key: str | None = None) -> str:
    """The snippet for ``shell`` (one of :data:`SHELLS`), binding ``key`` or the default."""
    chosen = DEFAULT_KEYS[shell] if key is None else key
    return _TEMPLATES[shell].format(key=chosen, shell=shell)
