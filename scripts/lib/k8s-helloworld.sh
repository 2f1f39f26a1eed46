# shellcheck shell=bash
# A cluster of scripts/k8s-cluster.sh with helloworld on its nodes, for scripts/k8s-try.sh and
# scripts/k8s-bench.sh (run from the checkout's root, as root, after scripts/setup.sh):
#
#   . scripts/lib/k8s-helloworld.sh
#   k8s_helloworld_cluster DIR    # DIR empty: a new temporary one
#   ... "$K8S_CLUSTER_DIR" ...
#
# It uses the cluster running in DIR (and leaves it running), or brings one up there (and brings
# it down at exit, error or Ctrl-C); then it builds helloworld's image (vhive image export,
# vhive.local/helloworld:latest) and imports it into every node's containerd.

k8s_helloworld_cluster() {
  [ "$(id -u)" -eq 0 ] || { echo "$0 must run as root (a cluster: network namespaces, cgroups, containerd)" >&2; return 1; }
  [ -f dist/containerd/kube/try.js ] || { echo "vhive is not built: run scripts/setup.sh first" >&2; return 1; }
  _K8S_HW_WORK=$(mktemp -d /tmp/vhive-k8s-XXXXXX)
  K8S_CLUSTER_DIR=${1:-$_K8S_HW_WORK/cluster}
  _K8S_HW_OURS=0
  trap _k8s_helloworld_cleanup EXIT
  trap 'exit 130' INT TERM
  if ! bash scripts/k8s-cluster.sh --dir "$K8S_CLUSTER_DIR" status >/dev/null 2>&1; then
    _K8S_HW_OURS=1
    bash scripts/k8s-cluster.sh --dir "$K8S_CLUSTER_DIR" up
  fi
  printf '\033[1m==> %s\033[0m\n' "building and exporting helloworld, importing it into each node's containerd" >&2
  node dist/cli/main.js image build functions/helloworld >&2
  node dist/cli/main.js image export helloworld "$_K8S_HW_WORK/helloworld.tar" >&2
  bash scripts/k8s-cluster.sh --dir "$K8S_CLUSTER_DIR" import "$_K8S_HW_WORK/helloworld.tar"
}

_k8s_helloworld_cleanup() {
  [ "$_K8S_HW_OURS" = 0 ] || bash scripts/k8s-cluster.sh --dir "$K8S_CLUSTER_DIR" down >&2 || true
  rm -rf "$_K8S_HW_WORK"
}
