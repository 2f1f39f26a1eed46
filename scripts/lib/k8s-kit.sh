# shellcheck shell=bash
# The Kubernetes kit: the upstream programs a real cluster of vhive nodes needs, built from their
# pinned Go modules (the Go module proxy is the one source of them here) into a cache keyed by
# version, so that a pin changed rebuilds one component and nothing else is ever rebuilt.
#
#   kubernetes  kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl
#   containerd  containerd ctr containerd-shim-runc-v2 (containerd 2: the runc shim of the same
#               release, which speaks its task API; runc itself stays Debian's)
#   cri-tools   crictl critest
#
# Kubernetes v1.35: a supported release that still runs on this host's cgroup v1 (hybrid, no
# systemd as PID 1), with `failCgroupV1: false` in the kubelet's configuration (1.35 made
# refusing cgroup v1 the default, KEP-5573, on its way to removing it; 1.36 and 1.37 were not
# tried; 1.34, which did not refuse it, is out of support). Its own
# go.mod replaces the staging modules (k8s.io/api, k8s.io/client-go, ...) by its staging/
# folder, which a module zip does not carry: the build module below requires k8s.io/kubernetes
# and replaces each of them by the published module of the same release (v0.35.N).
# containerd v2.2: the release line Kubernetes 1.35 was released against. cri-tools v1.34: the
# newest release at or below Kubernetes' minor that the module proxy serves (v1.35 is not).
# etcd is Debian's etcd-server (3.4), which this apiserver accepts (tested by the cluster's
# test): it needs no build.
#
# As a library:  . scripts/lib/k8s-kit.sh; k8s_kit_build [COMPONENT...]; "$(k8s_kit_bin kubectl)"
# As a command:  bash scripts/lib/k8s-kit.sh build [COMPONENT...]   (all three without one)
#                bash scripts/lib/k8s-kit.sh bin NAME                (a program's path, built)
#                bash scripts/lib/k8s-kit.sh dir COMPONENT           (its bin directory, built)
#
# The cache (VHIVE_KIT_CACHE, default /var/cache/vhive/kit, root's only) holds one folder per
# component and version, and the Go module and build caches the builds share; a folder is used
# only once its build finished (.complete), so a build that was stopped is redone.

K8S_KIT_KUBERNETES=v1.35.4
K8S_KIT_CONTAINERD=v2.2.10
K8S_KIT_CRI_TOOLS=v1.34.0

K8S_KIT_CACHE=${VHIVE_KIT_CACHE:-/var/cache/vhive/kit}
K8S_KIT_COMPONENTS=(kubernetes containerd cri-tools)

declare -A _K8S_KIT_PROGRAMS=(
  [kubernetes]="kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl"
  [containerd]="containerd ctr containerd-shim-runc-v2"
  [cri-tools]="crictl critest"
)

_k8s_kit_say() { printf 'k8s-kit: %s\n' "$*" >&2; }

_k8s_kit_version() {
  case "$1" in
    kubernetes) echo "$K8S_KIT_KUBERNETES" ;;
    containerd) echo "$K8S_KIT_CONTAINERD" ;;
    cri-tools) echo "$K8S_KIT_CRI_TOOLS" ;;
    *) _k8s_kit_say "unknown component $1 (known: ${K8S_KIT_COMPONENTS[*]})"; return 1 ;;
  esac
}

# The folder of a component at its pinned version.
_k8s_kit_home() { echo "$K8S_KIT_CACHE/$1-$(_k8s_kit_version "$1")"; }

_k8s_kit_component_of() {
  local component
  for component in "${K8S_KIT_COMPONENTS[@]}"; do
    case " ${_K8S_KIT_PROGRAMS[$component]} " in *" $1 "*) echo "$component"; return 0 ;; esac
  done
  _k8s_kit_say "no component builds $1 (programs: ${_K8S_KIT_PROGRAMS[*]})"
  return 1
}

_k8s_kit_go() {
  # Module and build caches of the kit's own, whatever the user's Go settings say.
  GOMODCACHE=$K8S_KIT_CACHE/go/mod GOCACHE=$K8S_KIT_CACHE/go/build GOFLAGS= GOTOOLCHAIN=local \
    CGO_ENABLED=0 go "$@"
}

# go.mod of a build module requiring MODULE at VERSION (and, for Kubernetes, its staging modules).
_k8s_kit_go_mod() {
  local module=$1 version=$2
  printf 'module vhive.local/k8s-kit\n\ngo 1.25.0\n\nrequire %s %s\n' "$module" "$version"
  if [ "$module" = k8s.io/kubernetes ]; then
    local staging
    staging=$(_k8s_kit_go mod download -json "$module@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
    [ -f "$staging" ] || { _k8s_kit_say "could not read $module@$version's go.mod"; return 1; }
    # `k8s.io/api => ./staging/src/k8s.io/api` becomes `k8s.io/api => k8s.io/api v0.35.4`.
    printf '\n'
    awk -v v="v0.${version#v1.}" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "replace " $1 " => " $1 " " v}' "$staging"
  fi
}

# Build one component into its folder; nothing when it is there already.
_k8s_kit_build_one() {
  local component=$1 version home work started program ldflags
  version=$(_k8s_kit_version "$component") || return 1
  home=$(_k8s_kit_home "$component")
  [ -f "$home/.complete" ] && return 0
  command -v go >/dev/null || { _k8s_kit_say "go is missing: the kit builds Kubernetes, containerd and cri-tools with Go (1.25 or newer)"; return 1; }
  (umask 077 && mkdir -p "$K8S_KIT_CACHE")
  started=$(date +%s)
  work=$(mktemp -d "$K8S_KIT_CACHE/.build-$component-XXXXXX")
  mkdir -p "$work/bin"
  _k8s_kit_say "building $component $version from the Go module proxy (once; kept in $home)"
  local module packages=() tests=()
  case "$component" in
    kubernetes)
      module=k8s.io/kubernetes
      for program in ${_K8S_KIT_PROGRAMS[kubernetes]}; do packages+=("$module/cmd/$program"); done
      # What `kubectl version` and the node's kubeletVersion say (hack/lib/version.sh sets the same).
      local minor=${version#v1.}
      minor=${minor%%.*}
      ldflags="-s -w"
      for program in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $program.gitVersion=$version -X $program.gitMajor=1 -X $program.gitMinor=$minor -X $program.gitTreeState=clean"
        ldflags+=" -X $program.buildDate=1970-01-01T00:00:00Z"
      done
      ;;
    containerd)
      module=github.com/containerd/containerd/v2
      for program in ${_K8S_KIT_PROGRAMS[containerd]}; do packages+=("$module/cmd/$program"); done
      ldflags="-s -w -X $module/version.Version=$version -X $module/version.Package=$module"
      ;;
    cri-tools)
      module=sigs.k8s.io/cri-tools
      packages=("$module/cmd/crictl")
      tests=("$module/cmd/critest")
      ldflags="-s -w -X $module/pkg/version.Version=$version"
      ;;
  esac
  # A subshell: a step that fails ends it, not the caller.
  (
    _k8s_kit_go_mod "$module" "$version" >"$work/go.mod" &&
      printf '//go:build tools\n\npackage kit\n\nimport (\n%s)\n' "$(printf '\t_ "%s"\n' "${packages[@]}" "${tests[@]}")" >"$work/tools.go" &&
      (cd "$work" && _k8s_kit_go mod tidy) &&
      # -mod=mod: a build may add go.sum lines tidy leaves out (tests of a dependency, for critest).
      (cd "$work" && _k8s_kit_go build -mod=mod -trimpath -ldflags "$ldflags" -o bin/ "${packages[@]}") &&
      for program in "${tests[@]}"; do
        (cd "$work" && _k8s_kit_go test -c -mod=mod -trimpath -ldflags "$ldflags" -o "bin/$(basename "$program")" "$program") || exit 1
      done
  ) >"$work/build.log" 2>&1 || {
    _k8s_kit_say "building $component $version failed; the end of its log:"
    tail -n 20 "$work/build.log" >&2
    rm -rf "$work"
    return 1
  }
  rm -rf "$home"
  mv "$work" "$home"
  touch "$home/.complete"
  _k8s_kit_say "built $component $version in $(($(date +%s) - started)) s"
}

k8s_kit_build() {
  local component
  [ $# -gt 0 ] || set -- "${K8S_KIT_COMPONENTS[@]}"
  for component in "$@"; do _k8s_kit_build_one "$component" || return 1; done
}

# The bin folder of a component, built first if needed.
k8s_kit_dir() {
  k8s_kit_build "$1" || return 1
  echo "$(_k8s_kit_home "$1")/bin"
}

# The path of one program (kubectl, containerd, critest, ...), built first if needed.
k8s_kit_bin() {
  local component dir
  component=$(_k8s_kit_component_of "$1") || return 1
  dir=$(k8s_kit_dir "$component") || return 1
  echo "$dir/$1"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    build) shift; k8s_kit_build "$@" ;;
    bin) k8s_kit_bin "${2:?usage: $0 bin PROGRAM}" ;;
    dir) k8s_kit_dir "${2:?usage: $0 dir COMPONENT}" ;;
    *) echo "usage: bash $0 build [${K8S_KIT_COMPONENTS[*]}] | bin PROGRAM | dir COMPONENT" >&2; exit 2 ;;
  esac
fi
