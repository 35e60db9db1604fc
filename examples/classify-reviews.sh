#!/usr/bin/env bash
# Classify every review of a CSV file (columns `id` and `text`) with one word, resumably.
#
#   examples/classify-reviews.sh reviews.csv labels.jsonl
#
# One JSON line per review goes to the output file, in the order of the CSV. Stop it
# (Ctrl-C, a reboot, kill -9) and run it again: the reviews already classified are
# kept, not asked again. Temperature 0 makes each answer the model's usual one, so
# --cache can answer a review seen before (in another file too) without the model.
set -uo pipefail

if (( $# < 2 )); then
  echo "usage: classify-reviews.sh REVIEWS.csv OUT.jsonl" >&2
  exit 2
fi
reviews=$1
labels=$2

cortan batch "$reviews" --output "$labels" --option temperature=0 --cache \
  --template $'Classify the sentiment of this product review as positive, negative or mixed.\nAnswer with that one word only.\n\nReview: {text}'
status=$?
case $status in
  0) echo "every review classified: $labels" >&2 ;;
  4) echo "some reviews failed (their lines say why): run again to retry just those" >&2 ;;
  130) echo "stopped: run again to go on where it stopped" >&2 ;;
esac
exit $status
