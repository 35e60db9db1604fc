#!/usr/bin/env bash
# Summarise the last lines of a log file with a model.
#
#   examples/summarise-log.sh /var/log/syslog [lines] [model]
#
# The log goes in on stdin, framed by cortan as data; the instruction comes after it.
# Exit codes are cortan's: 0 ok, 1 the model could not answer, 2 a usage error.
set -euo pipefail

if (( $# < 1 )); then
  echo "usage: summarise-log.sh LOGFILE [LINES] [MODEL]" >&2
  exit 2
fi
log=$1
lines=${2:-200}
model=${3:-}

# Checked first: with pipefail, a missing log fails the pipe only after cortan has
# already asked the model about an empty input.
if [[ ! -r "$log" || -d "$log" ]]; then
  printf 'summarise-log.sh: cannot read %s\n' "$log" >&2
  exit 2
fi

args=(ask --no-stream)
[[ -n "$model" ]] && args+=(-m "$model")

tail -n "$lines" "$log" | cortan "${args[@]}" \
  "Summarise this log: the errors first, then anything unusual, in at most 8 bullet points."
