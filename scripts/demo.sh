#!/usr/bin/env bash
# The main job end to end: set up the host, then `vhive demo` (build helloworld, boot it in a
# microVM, call it, print the reply and the boot breakdown, stop it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/cli/main.js demo "$@"
