#!/usr/bin/env bash
# Pod starts on a real Kubernetes cluster (as root, after scripts/setup.sh): `kubectl scale` of a
# Deployment from 0 to 1 until the first reply at its pod IP, for a vhive pod on a node without
# the image's snapshot (boot), one on a node with it and its working set (prefetch), and the same
# image in a runc Deployment, interleaved, with where the time goes (src/containerd/kube/bench.ts).
# It brings up the cluster of scripts/k8s-cluster.sh (or uses the one --dir names, and leaves it
# running), imports helloworld, and writes OUT/k8s-scale.json; its last line is one JSON object
# keyed by kind, each {"medianMs","minMs","maxMs","n"}.
#
#   bash scripts/k8s-bench.sh [--reps 5] [--out DIR] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
out=docs/results/tcg-$(date -u +%F)/k8s
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "usage: bash scripts/k8s-bench.sh [--reps N] [--out DIR] [--dir DIR]" >&2; exit 2 ;;
  esac
done
. scripts/lib/k8s-helloworld.sh
k8s_helloworld_cluster "$dir"
node dist/containerd/kube/bench.js --cluster "$K8S_CLUSTER_DIR" --out "$out" --reps "$reps"
