#!/usr/bin/env bash
# Try vhive as a Kubernetes node's runtime, through the interface kubelet uses, after
# scripts/setup.sh: start a private containerd with its CRI plugin and CNI networking
# (scripts/lib/private-containerd.sh: its own config, root, state, socket and pod bridge in a
# temp dir, runtime handler `vhive`), import helloworld (vhive image export) and the pause image,
# and run three pods of helloworld one after another with handler vhive, each with a sidecar
# container (the same image: Python's gRPC client) that calls the function on the pod's
# localhost; the function is called at each pod IP from the host. Everything it made is removed,
# and its last line is one JSON object:
#   {"starts":["boot","record","prefetch"],"podReplies":[...],"sidecarReplies":[...],"ms":[...]}
# ms: from RunPodSandbox to the function's first reply at the pod IP. The CRI calls are
# src/containerd/cri/try.ts. The shim keeps its images and snapshots in a fresh state directory
# of the try's own, so the first pod boots; helloworld's recipe image is built (once) in the
# usual state directory ($VHIVE_STATE or ~/.local/share/vhive) to export it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/cri-try.sh must run as root (containerd, network namespaces, mounts, /dev/userfaultfd)" >&2
  exit 1
fi
for tool in containerd ctr node; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/setup.sh first" >&2; exit 1; }
done
[ -f dist/containerd/cri/try.js ] || { echo "vhive is not built: run scripts/setup.sh first" >&2; exit 1; }

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
vhive() { node dist/cli/main.js "$@"; }

work=$(mktemp -d /tmp/vhive-cri-try-XXXXXX)
. scripts/lib/private-containerd.sh
. scripts/lib/cri-images.sh
cleanup() {
  private_containerd_stop || true
  rm -rf "$work"
}
trap cleanup EXIT

# containerd runs shims by name from its PATH: this checkout's shim first, whatever is installed.
mkdir -p "$work/bin" "$work/logs"
printf '#!/bin/sh\nexec %s %s/dist/containerd/shim/main.js "$@"\n' "$(command -v node)" "$PWD" > "$work/bin/containerd-shim-vhive-v2"
chmod 755 "$work/bin/containerd-shim-vhive-v2"

say "building and exporting helloworld"
vhive image build functions/helloworld >&2
vhive image export helloworld "$work/helloworld.tar" --name vhive.local/helloworld:try >&2
image_cache="${VHIVE_STATE:-$HOME/.local/share/vhive}/cri/images"

say "starting a private containerd with its CRI plugin"
export VHIVE_STATE="$work/vhive-state" # the shim's: images, snapshots and working sets of this try only
# start replaces the EXIT trap with its own (stop containerd); cleanup removes the try's files too.
private_containerd_start --shim-dir "$work/bin" || { cleanup; exit 1; }
trap cleanup EXIT
cri_images_import "$PRIVATE_CONTAINERD_SOCKET" "$image_cache" pause >&2
ctr --address "$PRIVATE_CONTAINERD_SOCKET" -n k8s.io images import "$work/helloworld.tar" >&2

say "three pods of helloworld with runtime handler vhive"
node dist/containerd/cri/try.js --socket "$PRIVATE_CONTAINERD_SOCKET" --containerd-state "$PRIVATE_CONTAINERD_DIR/state" \
  --image vhive.local/helloworld:try --log-dir "$work/logs"
