#!/usr/bin/env bash
# Let a model write the command for a question about this folder, and run it unattended
# only when it is one of the read-only commands this script allows. Anything else (a
# deletion, a redirect, `;` or `$(...)` tacked on) is not run: cortan exits 5 and says why.
# cortan never runs a command without a terminal unless [approval] allows it; here the
# allowlist is given for this script alone, in the environment.
#
# Usage: examples/read-only-report.sh how much space each folder here takes
set -uo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 WHAT TO FIND OUT ABOUT THIS FOLDER" >&2
    exit 2
fi

export CORTAN_APPROVAL__ALLOW_COMMANDS='["du -sh *", "df -h *", "ls *", "wc -l *"]'

# stdin from /dev/null: no terminal, so nothing is asked and only the allowlist counts.
cortan cmd --yes --no-log -- "$*" </dev/null
status=$?
if [ "$status" -eq 5 ]; then
    echo "not run: ask again, or run \`cortan cmd\` on a terminal to review it" >&2
fi
exit "$status"
