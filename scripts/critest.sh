#!/usr/bin/env bash
# cri-tools' CRI validation suite (critest, the suite CRI-O, Kata and gVisor report against)
# against a private containerd 2 with its CRI plugin and CNI (scripts/lib/private-containerd.sh,
# the Kubernetes kit's containerd and critest), once with runc as the baseline and once with
# runtime handler vhive (as root, after scripts/setup.sh):
#
#   sudo bash scripts/critest.sh [--focus REGEX] [--out DIR] [--handlers runc,vhive] [--report]
#
# critest pulls its images from public registries that cannot be reached here: they are built
# from Debian's busybox under the names critest uses (scripts/lib/cri-images.sh) and served from
# a registry mirror on loopback, which containerd's hosts.toml points registry.k8s.io and gcr.io
# at. Writes OUT/critest-<handler>.tsv (status, seconds, test, first line of the failure) and
# OUT/critest.md (the tests that fail with vhive but pass with runc), and prints as its last
# line "N passed, M failed" for vhive. Exits 0 when the suite ran, whatever its results.
# --report writes OUT/critest.md again from the .tsv files there, running nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "critest: $*" >&2; exit 1; }

FOCUS="" OUT=docs/results/tcg-$(date -u +%F)/critest HANDLERS=runc,vhive REPORT_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --focus) FOCUS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --handlers) HANDLERS=$2; shift 2 ;;
    --report) REPORT_ONLY=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
. scripts/lib/k8s-kit.sh
. scripts/lib/cri-images.sh
. scripts/lib/private-containerd.sh
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# The tests that fail with vhive but pass with runc: the README explains each. Both sides of
# join sorted as it compares, on the test's name alone, in the C locale.
both() { LC_ALL=C join -t$'\t' -1 3 -2 3 <(LC_ALL=C sort -t$'\t' -k3,3 "$OUT/critest-runc.tsv") <(LC_ALL=C sort -t$'\t' -k3,3 "$OUT/critest-vhive.tsv"); }
write_report() {
  {
    echo "# critest $K8S_KIT_CRI_TOOLS on containerd $K8S_KIT_CONTAINERD: runc against vhive"
    echo
    echo "Written by \`scripts/critest.sh\`; the suite ran at $(date -u -r "$OUT/critest-vhive.tsv" +%FT%TZ)."
    echo
    for handler in runc vhive; do
      printf -- '- %s: %s\n' "$handler" "$(cut -f1 "$OUT/critest-$handler.tsv" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//')"
    done
    echo
    echo "## Failing with vhive, passing with runc"
    echo
    echo "| test | vhive's failure |"
    echo "|---|---|"
    both | awk -F'\t' '$2 == "pass" && $5 == "fail" {gsub(/\|/, "\\|"); printf "| %s | %s |\n", $1, $7}'
    echo
    echo "## Failing with both"
    echo
    both | awk -F'\t' '$2 == "fail" && $5 == "fail" {printf "- %s: %s\n", $1, $4}'
  } >"$OUT/critest.md"
  say "wrote $OUT/critest.md"
}
if [ "$REPORT_ONLY" = 1 ]; then
  write_report
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "this must run as root (containerd, network namespaces, mounts)"
[ -f dist/shim/main.js ] || die "vhive is not built: run scripts/setup.sh first"


CRITEST=$(k8s_kit_bin critest)
CONTAINERD_DIR=$(k8s_kit_dir containerd)

work=$(mktemp -d /tmp/vhive-critest-XXXXXX)
cleanup() {
  private_containerd_stop || true
  rm -rf "$work"
}
trap cleanup EXIT

# The shim: this checkout's, first on containerd's PATH, with a state folder of the run's own.
mkdir -p "$work/bin" "$work/mirror"
printf '#!/bin/sh\nexec %q %q "$@"\n' "$(command -v node)" "$ROOT/dist/shim/main.js" >"$work/bin/containerd-shim-vhive-v2"
chmod 755 "$work/bin/containerd-shim-vhive-v2"
# Built images are kept where the other CRI scripts keep theirs (keyed by their inputs).
cache=${VHIVE_STATE:-${XDG_DATA_HOME:-$HOME/.local/share}/vhive}/cri/images
export VHIVE_STATE=$work/vhive-state

say "building critest's images from Debian's busybox"
images=$(cri_images_build "$cache" pause "${CRI_CRITEST_IMAGE_NAMES[@]}")
for name in "${CRI_CRITEST_IMAGE_NAMES[@]}"; do ln -s "$images/$name.tar" "$work/mirror/$name.tar"; done

say "starting a private containerd 2 with its CRI plugin and a registry mirror of the images"
private_containerd_start --containerd "$CONTAINERD_DIR" --shim-dir "$work/bin" --mirror-archives "$work/mirror" || { cleanup; exit 1; }
trap cleanup EXIT
cri_images_import "$PRIVATE_CONTAINERD_SOCKET" "$cache" pause

run_suite() {
  local handler=$1 args=()
  say "critest with runtime handler $handler"
  args=(--runtime-endpoint "unix://$PRIVATE_CONTAINERD_SOCKET" --image-endpoint "unix://$PRIVATE_CONTAINERD_SOCKET"
    --runtime-handler "$handler" --ginkgo.junit-report "$work/critest-$handler.xml" --ginkgo.no-color --ginkgo.timeout 2h)
  [ -z "$FOCUS" ] || args+=(--ginkgo.focus "$FOCUS")
  # critest exits non-zero when a test fails: that is a result, not a failure to run.
  "$CRITEST" "${args[@]}" >"$OUT/critest-$handler.log" 2>&1 || true
  [ -f "$work/critest-$handler.xml" ] || die "critest wrote no report; see $OUT/critest-$handler.log"
  node scripts/lib/junit-results.mjs "$work/critest-$handler.xml" | sort -t$'\t' -k3 >"$OUT/critest-$handler.tsv"
  say "$handler: $(cut -f1 "$OUT/critest-$handler.tsv" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')"
}

IFS=, read -r -a handlers <<<"$HANDLERS"
for handler in "${handlers[@]}"; do run_suite "$handler"; done

[ -f "$OUT/critest-runc.tsv" ] && [ -f "$OUT/critest-vhive.tsv" ] && write_report
last=${handlers[${#handlers[@]}-1]}
[ ! -f "$OUT/critest-vhive.tsv" ] || last=vhive
printf '%s passed, %s failed\n' "$(grep -c '^pass' "$OUT/critest-$last.tsv" || true)" "$(grep -c '^fail' "$OUT/critest-$last.tsv" || true)"
