#!/usr/bin/env bash
# The containerd and CRI start benchmarks on a private containerd node (scripts/lib/vhive-node.sh),
# after scripts/setup.sh:
#
#   bash scripts/cri-bench.sh pods [--reps N] [--kinds boot,vanilla,record,prefetch,runc]
#       issue 13: RunPodSandbox until the first reply at the pod IP, per kind (vhive bench pods)
#   bash scripts/cri-bench.sh containerd [--reps N]
#       issue 12: ctr run until the first reply, boot and prefetch, beside vhive snapshot restore
#       of the same snapshot, and the shim's overhead (vhive bench containerd)
#
# Further options go to the command. It prints the command's table, and as its last line one
# JSON object of medians; everything it started is stopped and removed.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pods | containerd) bench=$1; shift ;;
  *) echo "usage: bash scripts/cri-bench.sh pods|containerd [options of vhive bench pods|containerd]" >&2; exit 2 ;;
esac
. scripts/lib/vhive-node.sh

ref=vhive.local/helloworld:bench
if [ "$bench" = pods ]; then namespace=k8s.io; else namespace=default; fi # CRI's, ctr's
vhive_node_start "$(mktemp -d /tmp/vhive-cri-bench-XXXXXX)" "$ref" "$namespace"
args=(--containerd "$PRIVATE_CONTAINERD_SOCKET" --containerd-state "$PRIVATE_CONTAINERD_DIR/state" --image "$ref")
if [ "$bench" = pods ]; then args+=(--containerd-root "$PRIVATE_CONTAINERD_DIR/root"); fi
_vhive_node_say "vhive bench $bench"
# --state: the shim's own (containerd's VHIVE_STATE), whose snapshots the bench evicts and restores.
node dist/cli/main.js --state "$VHIVE_STATE" bench "$bench" "${args[@]}" "$@"
