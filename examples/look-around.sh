#!/usr/bin/env bash
# Ask about a folder, letting the model look for itself with cortan's read-only tools:
# it may list folders, read files and search text, and nothing else (run_command is not
# offered). The three are allowlisted for this run only, through the environment, so
# nothing is asked and the script runs unattended; every call is still logged
# (`cortan grants log`) and stored with the answer (`cortan sessions show`).
#
#   examples/look-around.sh ~/src/project "Where is the config file read?"
set -euo pipefail
dir=${1:?usage: look-around.sh FOLDER [QUESTION]}
question=${2:-"What is in this folder, and what is it for? Look before you answer."}
cd "$dir"
read_only='["read_file", "list_dir", "search_text"]'
CORTAN_TOOLS__BUILTIN=$read_only CORTAN_APPROVAL__ALLOW_TOOLS=$read_only \
  exec cortan ask --tools --no-stdin "$question"
