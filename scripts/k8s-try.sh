#!/usr/bin/env bash
# Try vhive on a real Kubernetes cluster (as root, after scripts/setup.sh): bring up the
# two-node cluster of scripts/k8s-cluster.sh (kubelet, control plane and containerd 2 built from
# their Go modules), import helloworld (vhive image export) into each node's containerd, apply
# deploy/kubernetes/runtimeclass.yaml and deployment.yaml with kubectl, call every pod at its pod
# IP and the Service at its ClusterIP, scale to 0 (the pods save the snapshot as they stop), to 4
# (pods on both nodes restore, one a node recording the working set), to 0 and to 2 (they
# prefetch), read `kubectl logs` of a function container, delete everything and bring the
# cluster down. Last line, one JSON object:
#   {"nodes":2,"pods":[{"name":...,"node":...,"start":"boot|vanilla|record|prefetch","ms":...},...],
#    "podReplies":[...],"serviceReplies":[...],"logs":true}
# The Kubernetes calls are src/containerd/kube/try.ts.
#
# --dir DIR: the cluster's folder (default: a new temporary one). A cluster already running
# there is used and left running; one this script brought up, it brings down, also on error
# and Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    *) echo "usage: bash scripts/k8s-try.sh [--dir DIR]" >&2; exit 2 ;;
  esac
done
. scripts/lib/k8s-helloworld.sh
k8s_helloworld_cluster "$dir"
node dist/containerd/kube/try.js --cluster "$K8S_CLUSTER_DIR"
