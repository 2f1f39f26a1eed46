# shellcheck shell=bash
# A private containerd node running vhive, for scripts/cri-try.sh and scripts/cri-bench.sh (run
# from the checkout's root, as root, after scripts/setup.sh): this checkout's
# containerd-shim-vhive-v2 first on containerd's PATH, helloworld exported from its recipe image
# (built once in the usual state directory, $VHIVE_STATE or ~/.local/share/vhive), a private
# containerd with its CRI plugin and CNI (private-containerd.sh) whose shim keeps images and
# snapshots in a fresh state directory of the node's own, and the images imported.
#
#   . scripts/lib/vhive-node.sh
#   vhive_node_start WORK REF NAMESPACE...   # WORK: an empty directory, removed at exit
#   ... $PRIVATE_CONTAINERD_SOCKET, $PRIVATE_CONTAINERD_DIR, $VHIVE_STATE (the shim's) ...
#
# It stops containerd (removing every pod and container) and removes WORK on exit, error and
# Ctrl-C. The pause image goes to k8s.io (CRI's namespace), helloworld as REF to each NAMESPACE.

. scripts/lib/private-containerd.sh
. scripts/lib/cri-images.sh

_vhive_node_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

_vhive_node_cleanup() {
  private_containerd_stop || true
  rm -rf "$_VHIVE_NODE_WORK"
}

vhive_node_start() {
  local work=$1 ref=$2 tool namespace
  shift 2
  # WORK goes at exit from here on, also when a check below fails (nothing else is started yet).
  _VHIVE_NODE_WORK=$work
  trap _vhive_node_cleanup EXIT
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0 must run as root (containerd, network namespaces, mounts, /dev/userfaultfd)" >&2
    return 1
  fi
  for tool in containerd ctr node; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/setup.sh first" >&2; return 1; }
  done
  [ -f dist/shim/main.js ] || { echo "vhive is not built: run scripts/setup.sh first" >&2; return 1; }

  # containerd runs shims by name from its PATH: this checkout's shim first, whatever is installed.
  mkdir -p "$work/bin"
  printf '#!/bin/sh\nexec %s %s/dist/shim/main.js "$@"\n' "$(command -v node)" "$PWD" >"$work/bin/containerd-shim-vhive-v2"
  chmod 755 "$work/bin/containerd-shim-vhive-v2"

  _vhive_node_say "building and exporting helloworld"
  node dist/cli/main.js image build functions/helloworld >&2
  node dist/cli/main.js image export helloworld "$work/helloworld.tar" --name "$ref" >&2
  local image_cache="${VHIVE_STATE:-$HOME/.local/share/vhive}/cri/images"

  _vhive_node_say "starting a private containerd with its CRI plugin"
  export VHIVE_STATE="$work/vhive-state" # the shim's: images, snapshots and working sets of this node only
  # start replaces the EXIT trap with its own (stop containerd); the node's puts it back, WORK too.
  private_containerd_start --shim-dir "$work/bin" || { _vhive_node_cleanup; return 1; }
  trap _vhive_node_cleanup EXIT
  cri_images_import "$PRIVATE_CONTAINERD_SOCKET" "$image_cache" pause >&2
  for namespace in "$@"; do
    ctr --address "$PRIVATE_CONTAINERD_SOCKET" --namespace "$namespace" images import "$work/helloworld.tar" >&2
  done
}
