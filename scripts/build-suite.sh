#!/usr/bin/env bash
# Build the function suite's images (functions/<name>/recipe.json: helloworld and the paper's
# other nine), one at a time, and print each one's build time and size. Images are cached by
# content, so a second run only rebuilds what changed.
#
#   bash scripts/build-suite.sh                 # every function
#   bash scripts/build-suite.sh pyaes chameleon # just these
#   VHIVE_STATE=/tmp/suite-state bash scripts/build-suite.sh   # into that state directory
#
# The state directory is vhive's usual one: $VHIVE_STATE, else ~/.local/share/vhive.
# Needs a set-up host (scripts/setup.sh) and root, as `vhive image build` does.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f dist/cli/main.js ]; then
  npm run --silent build
fi

if [ "$#" -gt 0 ]; then
  names=("$@")
else
  names=()
  for recipe in functions/*/recipe.json; do
    names+=("$(basename "$(dirname "$recipe")")")
  done
fi

total_start=$(date +%s)
for name in "${names[@]}"; do
  if [ ! -f "functions/$name/recipe.json" ]; then
    echo "build-suite: no recipe at functions/$name/recipe.json" >&2
    exit 1
  fi
  start=$(date +%s)
  json=$(node dist/cli/main.js image build "functions/$name" --json)
  mib=$(printf '%s' "$json" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(Math.round(JSON.parse(s).bytes / 2 ** 20)))')
  printf '%-18s %5d s  %6d MiB\n' "$name" "$(( $(date +%s) - start ))" "$mib"
done
printf '%-18s %5d s\n' "total" "$(( $(date +%s) - total_start ))"
