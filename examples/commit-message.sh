#!/usr/bin/env bash
# Write a commit message for the staged changes, and let you edit it before committing.
#
#   git add -p && examples/commit-message.sh [model]
#
# Uses --json to check the answer is complete (finish_reason "stop") before using it.
set -euo pipefail

model=${1:-}
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "not in a git repository: run this where you commit" >&2
  exit 2
fi
diff=$(git diff --staged)
if [[ -z "$diff" ]]; then
  echo "nothing is staged" >&2
  exit 2
fi

args=(ask --json --role code)
[[ -n "$model" ]] && args+=(-m "$model")

report=$(printf '%s\n' "$diff" | cortan "${args[@]}" \
  "Write a git commit message for this diff: a subject line under 60 characters, a blank line, then a short body saying why. Output only the message.")

finish=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["finish_reason"])' <<<"$report")
if [[ "$finish" != "stop" ]]; then
  echo "the model did not finish the message (finish_reason: $finish)" >&2
  exit 1
fi

python3 -c 'import json,sys; print(json.load(sys.stdin)["content"].strip())' <<<"$report" > "$(git rev-parse --git-dir)/COMMIT_SUGGESTION"
git commit --edit --file "$(git rev-parse --git-dir)/COMMIT_SUGGESTION"
