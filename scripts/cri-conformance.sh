#!/usr/bin/env bash
# containerd's CRI integration suite (integration/ of Debian's containerd source package) against
# a private containerd with its CRI plugin and CNI (scripts/lib/private-containerd.sh), with
# the pods' runtime handler chosen by --runtime-handler: vhive (the default) or runc, the
# baseline. This is the client nobody here wrote: kubelet's side of the CRI, tested by
# containerd's own tests.
#
#   sudo bash scripts/cri-conformance.sh [--runtime-handler vhive|runc|NAME] [--run REGEX]
#        [--state DIR] [--timeout 60m] [--rebuild] [--list]
#
# First it builds the suite's test binary with Debian's Go toolchain and the source package's
# build dependencies (installed with `apt-get build-dep containerd` when missing), GOPATH-style
# as dh-golang builds the package, and the two failpoint helpers its sandbox-rollback tests need
# (a runc shim and a CNI bridge plugin that fail on request, registered as runtime runc-fp as
# containerd's own CI does); they are cached under STATE/cri/suite/<containerd version>/ (a
# build takes 5 to 9 minutes on 2 cores, then none). Then it starts the private containerd with
# a loopback registry mirror of the suite's images (built offline, scripts/lib/cri-images.sh),
# imports them, runs the suite (2 to 3 minutes with runc), and stops everything.
#
# Writes STATE/cri/results-<handler>.tsv and .md (each test: pass, fail or skip, its seconds
# and a one-line reason) and .jsonl (the suite's whole output, as test2json events), prints each result on stderr as it comes, and prints as its last line
# "N passed, M failed, K skipped". Exits 0 when the suite ran, whatever its results; 1 when it
# could not run (build, containerd). --run REGEX runs the matching tests only (go test -run);
# --list prints the suite's test names.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "cri-conformance: $*" >&2; exit 1; }

HANDLER=vhive RUN="" TIMEOUT=60m REBUILD=0 LIST=0
STATE=${VHIVE_STATE:-${XDG_DATA_HOME:-$HOME/.local/share}/vhive}
while [ $# -gt 0 ]; do
  case "$1" in
    --runtime-handler) HANDLER=$2; shift 2 ;;
    --run) RUN=$2; shift 2 ;;
    --state) STATE=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    --list) LIST=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

SOURCE=${VHIVE_CONTAINERD_SRC:-/var/cache/vhive/containerd-source/current}
[ -f "$SOURCE/integration/main_test.go" ] || die "$SOURCE holds no containerd source: run scripts/setup.sh (it fetches Debian's containerd source package)"

# The suite's tests on Linux, in the order go test runs them: not the files Go builds only on
# Windows (by name or by build constraint).
list_tests() {
  local file
  for file in "$SOURCE"/integration/*_test.go; do
    case "$file" in *_windows_test.go) continue ;; esac
    grep -q '^//go:build windows' "$file" && continue
    sed -n 's/^func \(Test[A-Za-z0-9_]*\)(t \*testing.T).*/\1/p' "$file"
  done
}
if [ "$LIST" = 1 ]; then
  list_tests | sort
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "must run as root (containerd, network namespaces, mounts)"

VERSION=$(dpkg-query -W -f='${Version}' containerd)
SUITE=$STATE/cri/suite/$VERSION
TEST_BIN=$SUITE/cri-integration.test

# The suite and its helpers, GOPATH-style (GO111MODULE=off) as dh-golang builds Debian's
# package: the source tree copied under GOPATH/src/github.com/containerd/containerd, its
# remaining vendor/ used for what Debian does not package (k8s.io/...), /usr/share/gocode for the
# rest. nice: the machine is shared.
build_suite() {
  if ! (cd "$SOURCE" && dpkg-checkbuilddeps >/dev/null 2>&1); then
    say "installing containerd's build dependencies (apt-get build-dep containerd=$VERSION)"
    DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "containerd=$VERSION" >/dev/null ||
      die "apt-get build-dep containerd failed (scripts/setup.sh adds the deb-src lines it needs)"
  fi
  command -v go >/dev/null || die "no Go toolchain after installing the build dependencies"
  local started
  BUILD_WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhive-cri-build-XXXXXX")
  trap 'rm -rf "$BUILD_WORK" "$SUITE.tmp"' EXIT
  local work=$BUILD_WORK
  mkdir -p "$work/gopath/src/github.com/containerd/containerd"
  cp -a "$SOURCE/." "$work/gopath/src/github.com/containerd/containerd/"
  say "building containerd $VERSION's CRI integration suite with $(go version | cut -d' ' -f3) (5 to 9 minutes on 2 cores)"
  started=$SECONDS
  mkdir -p "$SUITE.tmp"
  # (set -e does not reach into a subshell whose status is tested: each step says so itself.)
  (
    cd "$work/gopath/src/github.com/containerd/containerd" &&
      export GOPATH=$work/gopath:/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE=$work/gocache GOPROXY=off &&
      nice go test -c -o "$SUITE.tmp/cri-integration.test" ./integration &&
      nice go build -o "$SUITE.tmp/containerd-shim-runc-fp-v1" ./integration/failpoint/cmd/containerd-shim-runc-fp-v1 &&
      nice go build -o "$SUITE.tmp/cni-bridge-fp" ./integration/failpoint/cmd/cni-bridge-fp
  ) || die "building the suite failed (output above)"
  rm -rf "$SUITE"
  mv "$SUITE.tmp" "$SUITE"
  rm -rf "$BUILD_WORK"
  trap - EXIT
  say "built in $((SECONDS - started)) s: $SUITE"
}

if [ "$REBUILD" = 1 ] || [ ! -x "$TEST_BIN" ] || [ ! -x "$SUITE/containerd-shim-runc-fp-v1" ] || [ ! -x "$SUITE/cni-bridge-fp" ]; then
  rm -rf "$SUITE.tmp"
  build_suite
fi

[ -x "$ROOT/native/build/vhive-pause" ] || die "native/build/vhive-pause is missing: run scripts/setup.sh (it builds native/)"
if [ "$HANDLER" = vhive ] && ! command -v containerd-shim-vhive-v2 >/dev/null; then
  echo "cri-conformance: warning: containerd-shim-vhive-v2 is not on PATH; every pod with handler vhive will fail" >&2
fi

# shellcheck source=lib/private-containerd.sh
. "$ROOT/scripts/lib/private-containerd.sh"
# shellcheck source=lib/cri-images.sh
. "$ROOT/scripts/lib/cri-images.sh"

# The suite looks for host-local's allocations under /var/lib/cni (TestSandboxRemoveWithoutIPLeakage);
# they go to /var/lib/cni/networks/<this instance's network>, removed at stop. Three tests
# remove busybox (to show a container outlives its image, or to pull it again): the CRI plugin
# pulls it back from a loopback mirror of the images, so the tests after them still find it.
images=$(cri_images_build "$STATE/cri/images")
# containerd's CI waits 10 s before restarting a killed containerd (RESTART_WAIT_PERIOD); the
# restart test relies on it.
private_containerd_start --ipam-dir /var/lib/cni/networks --shim-dir "$SUITE" --mirror-archives "$images" --restart-delay 10 \
  --cni-plugin "$SUITE/cni-bridge-fp" --config-append "$ROOT/scripts/lib/cri-failpoint.toml.in"
mkdir -p "$PRIVATE_CONTAINERD_DIR/cni/failpoint.d"
private_containerd_fill "$ROOT/scripts/lib/cni-failpoint.conflist.in" "$PRIVATE_CONTAINERD_DIR/cni/failpoint.d/10-failpoint.conflist"
cri_images_import "$PRIVATE_CONTAINERD_SOCKET" "$STATE/cri/images"

RESULTS=$STATE/cri/results-$HANDLER
mkdir -p "$STATE/cri"
work=$(mktemp -d "${TMPDIR:-/tmp}/vhive-cri-run-XXXXXX")
trap 'private_containerd_stop; rm -rf "$work"' EXIT
say "running the suite with -runtime-handler $HANDLER${RUN:+ -run $RUN} (results: $RESULTS.tsv, .md, .jsonl)"
started=$SECONDS
args=(-test.v -test.timeout "$TIMEOUT"
  -cri-endpoint "unix://$PRIVATE_CONTAINERD_SOCKET" -cri-root "$PRIVATE_CONTAINERD_CRI_ROOT"
  -containerd-bin "$PRIVATE_CONTAINERD_BIN_NAME" -runtime-handler "$HANDLER")
[ -z "$RUN" ] || args+=(-test.run "$RUN")
# The suite's own temporary files go to the work directory; its output is framed by test2json.
# The binary exits non-zero when a test fails: that is a result, not an error of this script.
summary=$(cd "$work" && TMPDIR=$work go tool test2json -t -p integration "$TEST_BIN" "${args[@]}" 2>&1 |
  tee "$RESULTS.jsonl" | node "$ROOT/scripts/lib/go-test-results.mjs" --tsv "$RESULTS.tsv" --md "$RESULTS.md" \
    --title "containerd $VERSION CRI integration suite, -runtime-handler $HANDLER${RUN:+, -run $RUN}") || true
[ -n "$summary" ] || die "the suite's results could not be read (see above)"
say "ran in $((SECONDS - started)) s"

trap - EXIT
private_containerd_stop
rm -rf "$work"
echo "$summary"
