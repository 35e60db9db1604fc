#!/usr/bin/env bash
# Pull a person's name, age and e-mail out of free text, as one JSON document.
#
#   examples/extract-person.sh letter.txt [model]
#
# stdout gets exactly one JSON document that fits the schema, or nothing: exit code 3
# means the model's answer never fit (its raw text is on stderr), 1 a runtime failure,
# 2 a usage error. jq (or anything else) can read stdout without checking it.
set -euo pipefail

if (( $# < 1 )); then
  echo "usage: extract-person.sh FILE [MODEL]" >&2
  exit 2
fi
text=$1
model=${2:-}
[[ -r "$text" ]] || { echo "extract-person.sh: cannot read $text" >&2; exit 2; }

args=(ask --schema 'name str, age int, email str' --no-think)
[[ -n "$model" ]] && args+=(-m "$model")

cortan "${args[@]}" "Extract the person this text is about." < "$text"
