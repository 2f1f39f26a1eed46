#!/usr/bin/env bash
# Try vhive on a real Kubernetes cluster (as root, after scripts/setup.sh): bring up the
# two-node cluster of scripts/k8s-cluster.sh (kubelet, control plane and containerd 2 built from
# their Go modules), import helloworld (vhive image export) into each node's containerd, apply
# deploy/kubernetes/runtimeclass.yaml and deployment.yaml with kubectl, call every pod at its pod
# IP and the Service at its ClusterIP, scale to 0 (the pods save the snapshot as they stop) and to
# 4 (pods on both nodes restore), read `kubectl logs` of a function container, delete everything
# and bring the cluster down. Last line, one JSON object:
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
[ "$(id -u)" -eq 0 ] || { echo "$0 must run as root (a cluster: network namespaces, cgroups, containerd)" >&2; exit 1; }
[ -f dist/containerd/kube/try.js ] || { echo "vhive is not built: run scripts/setup.sh first" >&2; exit 1; }
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

work=$(mktemp -d /tmp/vhive-k8s-try-XXXXXX)
[ -n "$dir" ] || dir=$work/cluster
ours=0
cleanup() {
  [ "$ours" = 0 ] || bash scripts/k8s-cluster.sh --dir "$dir" down >&2 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! bash scripts/k8s-cluster.sh --dir "$dir" status >/dev/null 2>&1; then
  ours=1
  bash scripts/k8s-cluster.sh --dir "$dir" up
fi
say "building and exporting helloworld, importing it into each node's containerd"
node dist/cli/main.js image build functions/helloworld >&2
node dist/cli/main.js image export helloworld "$work/helloworld.tar" >&2
bash scripts/k8s-cluster.sh --dir "$dir" import "$work/helloworld.tar"
node dist/containerd/kube/try.js --cluster "$dir"
