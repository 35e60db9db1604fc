#!/usr/bin/env bash
# Ask one question per line of a file, safely inside a `while read` loop.
#
#   examples/ask-each-line.sh questions.txt > answers.txt
#
# --no-stdin keeps cortan away from the loop's own stdin (the rest of the file).
# A question that fails is reported and skipped; the loop goes on.
set -uo pipefail

if (( $# < 1 )); then
  echo "usage: ask-each-line.sh FILE" >&2
  exit 2
fi

while IFS= read -r question; do
  [[ -z "$question" ]] && continue
  printf '## %s\n\n' "$question"
  # `if ! cortan …` would leave `$?` at the 0 of the negation: keep the code itself.
  status=0
  cortan ask --no-stdin --no-stream "$question" || status=$?
  if (( status != 0 )); then
    printf '(no answer: cortan exited with %s)\n' "$status"
  fi
  printf '\n'
done < "$1"
