#!/usr/bin/env bash
# Prepare this host for vhive, idempotently: Debian packages, npm dependencies, the build,
# the native helpers, the guest kernel and initramfs, and the accelerator probe.
# Run as root on Debian 12. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh must run as root (it installs packages, and vhive needs /dev/userfaultfd):" >&2
  echo "log in as root, or put sudo in front of the command (sudo bash scripts/demo.sh)" >&2
  exit 1
fi

if ! command -v node >/dev/null || [ "$(node -p 'Number(process.versions.node.split(".")[0])')" -lt 20 ]; then
  echo "vhive needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  echo "Debian 12's own nodejs is 18; install Node.js 20 from NodeSource or your usual source, then run this again." >&2
  exit 1
fi

PACKAGES=(
  qemu-system-x86 qemu-utils      # the VMM
  linux-image-cloud-amd64         # the guest kernel (its vmlinux and virtio modules)
  busybox-static cpio lz4         # the guest initramfs
  e2fsprogs mmdebstrap umoci      # function images: ext4, Debian rootfs, OCI layouts
  build-essential python3         # native helpers, node-gyp (the guest agent links libc statically)
  libxxhash-dev                   # page checksums of snapshots (XXH3) in the pager and vhive-pagesum
  liblz4-dev libzstd-dev          # working sets compressed in blocks (lz4 by default, zstd to compare)
  protobuf-compiler libprotobuf-dev  # protoc and google/protobuf/*.proto: the containerd message types are generated at build
  golang-github-containerd-containerd-dev  # containerd 1.6's .proto files (runtime v2 shim, events), read by the build
  golang-github-gogo-protobuf-dev golang-github-gogo-googleapis-dev  # gogoproto/gogo.proto and google/rpc/{status,code}.proto they import
  containerd runc                 # the containerd runtime: containerd, ctr, containerd-shim-runc-v2 (tests talk to them)
  containernetworking-plugins     # CNI bridge, host-local and loopback in /usr/lib/cni: pod networks of the private containerd (scripts/lib/private-containerd.sh)
  stress                          # in the resource-consumer image of containerd's CRI suite (scripts/lib/cri-images.sh)
  dpkg-dev                        # dpkg-source, which `apt-get source` unpacks containerd's source package with
  etcd-server                     # the Kubernetes cluster's etcd (scripts/k8s-cluster.sh)
  iptables conntrack              # kube-proxy's Service rules, in each node's network namespace
  openssl curl                    # the cluster's certificates; its health checks
)
missing=()
for pkg in "${PACKAGES[@]}"; do
  case "$pkg" in \#*) continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's containerd source package: the CRI api.proto the CRI tests load
# (vendor/k8s.io/cri-api) and the CRI integration suite scripts/cri-conformance.sh builds.
# Fetched once per containerd version into /var/cache/vhive/containerd-source/<version>, with
# `current` pointing at the installed version's; deb-src lines are added in a sources file of
# vhive's own when the machine has none.
CONTAINERD_SOURCE=/var/cache/vhive/containerd-source
containerd_version=$(dpkg-query -W -f='${Version}' containerd)
if [ ! -f "$CONTAINERD_SOURCE/$containerd_version/.complete" ]; then
  say "fetching Debian's containerd $containerd_version source package"
  if ! apt-get source --print-uris -qq "containerd=$containerd_version" >/dev/null 2>&1; then
    deb_src=/etc/apt/sources.list.d/vhive-deb-src.sources
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$deb_src"
    else
      cat >"$deb_src" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt-get update -qq
  fi
  mkdir -p "$CONTAINERD_SOURCE"
  fetch=$(mktemp -d "$CONTAINERD_SOURCE/.fetch-XXXXXX")
  chown _apt "$fetch" 2>/dev/null || true # apt downloads as _apt where it may
  (cd "$fetch" && apt-get source -qq "containerd=$containerd_version" >/dev/null)
  rm -rf "${CONTAINERD_SOURCE:?}/$containerd_version"
  mv "$fetch"/containerd-*/ "$CONTAINERD_SOURCE/$containerd_version"
  rm -rf "$fetch"
  touch "$CONTAINERD_SOURCE/$containerd_version/.complete"
fi
ln -sfn "$containerd_version" "$CONTAINERD_SOURCE/current"

# npm ci only when package-lock.json changed since the last install.
stamp=node_modules/.vhive-lock-sha
lock_sha=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sha" > "$stamp"
fi

say "building vhive"
npm run --silent build

if [ -f native/Makefile ]; then
  say "building native helpers"
  make -s -C native
fi

# containerd finds a runtime by name on PATH: io.containerd.vhive.v2 is containerd-shim-vhive-v2.
shim=/usr/local/bin/containerd-shim-vhive-v2
shim_script=$(printf '#!/bin/sh\n# vhive as a containerd runtime (io.containerd.vhive.v2), installed by %s/scripts/setup.sh.\nexec %s %s/dist/shim/main.js "$@"\n' "$PWD" "$(command -v node)" "$PWD")
if [ "$(cat "$shim" 2>/dev/null)" != "$shim_script" ]; then
  say "installing $shim (the vhive containerd runtime)"
  printf '%s\n' "$shim_script" > "$shim.partial"
  chmod 755 "$shim.partial"
  mv "$shim.partial" "$shim"
fi

say "checking the host (guest kernel, accelerator probe)"
node dist/cli/main.js doctor
