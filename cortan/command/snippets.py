"""``cortan shell-init``: key bindings that turn the words on the command line into a command.

Layer: command (text only). The key, Alt-E by default, calls ``cortan cmd --print``
with the line typed so far and puts the command it prints back in the line buffer,
cursor at its end: nothing runs until the user reads it and presses Enter. Alt-E is
free in bash's and zsh's default emacs keymaps, reachable on every keyboard and
terminal (Esc then E where Alt is not Meta), and the key aichat's integration uses,
so hands may know it already; in fish it replaces "edit in $EDITOR", which stays on
Alt-V. ``--key`` binds another key (in the shell's own notation).

stdin is ``/dev/null`` for the call (cortan must never wait on the line editor's
terminal). What cortan says on stderr (a refusal, a failure, a risk) is read on the
terminal: bash's ``bind -x`` prints it above the prompt itself; zsh and fish would
print it glued to the end of the line being edited, so there it is held in a file made
by ``mktemp`` and printed after the call, below the line, before the prompt is drawn
again.
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
  local command said
  if [[ -n ${{BUFFER//[[:space:]]/}} ]] && said=$(mktemp); then
    command=$(command cortan cmd --print --shell {shell} -- "$BUFFER" </dev/null 2>"$said")
    if [[ $? -eq 0 && -n $command ]]; then
      BUFFER=$command
      CURSOR=${{#BUFFER}}
    fi
    if [[ -s $said ]]; then
      zle -I  # the prompt is drawn again below what is printed (reset-prompt would wipe it)
      command cat -- "$said" >&2
    else
      zle reset-prompt
    fi
    command rm -f -- "$said"
  else
    zle reset-prompt
  fi
}}
zle -N __cortan_cmd
bindkey '{key}' __cortan_cmd
"""

_FISH = r"""# cortan: {key} turns the words on the command line into a command (docs/commands.md)
function __cortan_cmd
    set -l words (commandline)
    if string length -q -- (string trim -- "$words"); and set -l said (mktemp)
        set -l command (command cortan cmd --print --shell {shell} -- "$words" \
            </dev/null 2>$said | string collect)
        and test -n "$command"
        and commandline -r -- $command
        if test -s $said
            echo >&2
            command cat -- $said >&2
        end
        command rm -f -- $said
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
