#!/usr/bin/env bash
# The whole test suite: set up the host, then unit tests and the integration tests that boot
# real microVMs (under TCG where KVM cannot run a guest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Kubernetes kit (kubelet, the control plane, containerd 2, cri-tools from their pinned Go
# modules): about 7 minutes on a fresh machine, then cached by version.
bash scripts/lib/k8s-kit.sh build
npx tsc -p test/tsconfig.json --noEmit
npm test
