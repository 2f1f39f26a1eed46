#!/usr/bin/env bash
# The whole test suite: set up the host, then unit tests and the integration tests that boot
# real microVMs (under TCG where KVM cannot run a guest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p test/tsconfig.json --noEmit
npm test
