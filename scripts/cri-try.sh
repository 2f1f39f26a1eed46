#!/usr/bin/env bash
# Try vhive as a Kubernetes node's runtime, through the interface kubelet uses, after
# scripts/setup.sh: start a private containerd with its CRI plugin and CNI networking (its own
# config, root, state, socket and pod bridge in a temp dir, runtime handler `vhive`: see
# scripts/lib/vhive-node.sh), import helloworld (vhive image export) and the pause image, and run
# three pods of helloworld one after another with handler vhive, each with a sidecar container
# (the same image: Python's gRPC client) that calls the function on the pod's localhost; the
# function is called at each pod IP from the host. Everything it made is removed, and its last
# line is one JSON object:
#   {"starts":["boot","record","prefetch"],"podReplies":[...],"sidecarReplies":[...],"ms":[...]}
# ms: from RunPodSandbox to the function's first reply at the pod IP. The CRI calls are
# src/containerd/cri/try.ts. The shim keeps its images and snapshots in a fresh state directory
# of the try's own, so the first pod boots.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/vhive-node.sh

vhive_node_start "$(mktemp -d /tmp/vhive-cri-try-XXXXXX)" vhive.local/helloworld:try k8s.io
mkdir -p "$_VHIVE_NODE_WORK/logs"

_vhive_node_say "three pods of helloworld with runtime handler vhive"
node dist/containerd/cri/try.js --socket "$PRIVATE_CONTAINERD_SOCKET" --containerd-state "$PRIVATE_CONTAINERD_DIR/state" \
  --image vhive.local/helloworld:try --log-dir "$_VHIVE_NODE_WORK/logs"
