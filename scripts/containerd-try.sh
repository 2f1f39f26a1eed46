#!/usr/bin/env bash
# Try vhive as a containerd runtime, after scripts/setup.sh: start a private containerd (Debian's
# package; its own config, root, state and socket in a temp dir, the vhive runtime registered as
# io.containerd.vhive.v2: scripts/lib/private-containerd.sh), import helloworld as an OCI image (vhive image export), run it three
# times with `ctr run --runtime io.containerd.vhive.v2`, call the function each time, stop
# everything it started, and print as its last line one JSON object:
#   {"starts":["boot","record","prefetch"],"replies":[...],"ms":[...]}
# ms: from `ctr run` to the function's first reply. The shim keeps its images and snapshots in a
# fresh state directory of the try's own, so the first run boots; helloworld's recipe image is
# built (once) in the usual state directory ($VHIVE_STATE or ~/.local/share/vhive) to export it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
vhive() { node dist/cli/main.js "$@"; }

work=$(mktemp -d /tmp/vhive-containerd-try-XXXXXX)
# The node cri-try.sh uses (checks, this checkout's shim on containerd's PATH, helloworld
# exported and imported, the shim's own state in $work), removed at exit.
. scripts/lib/vhive-node.sh
vhive_node_start "$work" vhive.local/helloworld:try default
ctr() { command ctr --address "$PRIVATE_CONTAINERD_SOCKET" "$@"; }
task_state="$PRIVATE_CONTAINERD_DIR/state/io.containerd.runtime.v2.task/default"

results="$work/results.jsonl"
for run in 1 2 3; do
  id="try-$run"
  say "run $run: ctr run --runtime io.containerd.vhive.v2 vhive.local/helloworld:try $id"
  began=$(date +%s%N)
  ctr run -d --null-io --net-host --runtime io.containerd.vhive.v2 vhive.local/helloworld:try "$id" >&2
  reply=$(vhive call 127.0.0.1:50051 --data "containerd run $run" --wait 60s)
  took=$(( ($(date +%s%N) - began) / 1000000 ))
  node -e '
    const [startFile, reply, ms] = process.argv.slice(1);
    const { start } = JSON.parse(require("fs").readFileSync(startFile, "utf8"));
    console.log(JSON.stringify({ start, reply, ms: Number(ms) }));
  ' "$task_state/$id/vhive-start.json" "$reply" "$took" >> "$results"
  echo "run $run: $(tail -n1 "$results")" >&2
  ctr task kill "$id" >&2
  # The first container becomes the image's snapshot as it stops; the second writes its working set.
  for _ in $(seq 600); do
    [ "$(ctr task ls | awk -v id="$id" '$1 == id { print $3 }')" = STOPPED ] && break
    sleep 0.1
  done
  ctr task delete "$id" >&2
  ctr container rm "$id" >&2
done

node -e '
  const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((line) => JSON.parse(line));
  console.log(JSON.stringify({ starts: runs.map((r) => r.start), replies: runs.map((r) => r.reply), ms: runs.map((r) => r.ms) }));
' "$results"
