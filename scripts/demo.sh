#!/usr/bin/env bash
# The main job end to end: set up the host, then `vhive demo` (build helloworld and json_serdes,
# then cold-start them warm, booted and from snapshots, and print the table and the report path).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/cli/main.js demo "$@"
