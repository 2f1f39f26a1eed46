# shellcheck shell=bash
# A private containerd with its CRI plugin and real CNI networking, for tests and scripts. It is
# Debian's containerd (1.6), or containerd 2 from the Kubernetes kit (--containerd DIR), with its
# own configuration (containerd-cri.toml.in, containerd2-cri.toml.in), root, state, socket,
# runc state, CNI configuration (cni-bridge.conflist.in) and IP allocations, all under one
# temporary directory, and a Linux bridge and /24 of its own. Stopping it leaves nothing behind:
# no process, network namespace, bridge, veth, mount or file (see private_containerd_stop).
#
# As a library (scripts/cri-conformance.sh):
#   . scripts/lib/private-containerd.sh
#   private_containerd_start [options below]
#   ctr --address "$PRIVATE_CONTAINERD_SOCKET" ...
#   private_containerd_stop     # the EXIT trap start installs runs it too (Ctrl-C, errors)
#
# As a command (the TypeScript tests, test/integration/containerd-env.ts):
#   bash scripts/lib/private-containerd.sh run [the same options]
# starts it, prints one JSON line {"event":"ready",...} with the variables below, and stops it
# when its stdin closes (so a parent killed with SIGKILL still leaves nothing) or on SIGTERM or
# SIGINT. It also prints {"event":"started","pid":N} whenever containerd is (re)started.
#
# containerd runs under a supervisor that restarts it when it dies, as systemd does on a node:
# containerd's CRI suite kills it by name to test restarts (pkill -x NAME, NAME being
# $PRIVATE_CONTAINERD_BIN_NAME, a symlink to containerd of this instance's own name), and
# issue 12's reconnect test kills it with SIGKILL.
#
# After start:
#   PRIVATE_CONTAINERD_DIR       the temporary directory that holds everything
#   PRIVATE_CONTAINERD_SOCKET    containerd's gRPC socket (CRI too)
#   PRIVATE_CONTAINERD_CRI_ROOT  the CRI plugin's root directory (the suite's -cri-root)
#   PRIVATE_CONTAINERD_BIN_NAME  containerd's process name (the suite's -containerd-bin)
#   PRIVATE_CONTAINERD_BRIDGE, _NETWORK, _SUBNET, _GATEWAY   the pod network
#   PRIVATE_CONTAINERD_LOG       containerd's log
#
# Options:
#   --containerd DIR  the containerd, ctr and containerd-shim-runc-v2 in DIR instead of Debian's
#                     (scripts/lib/k8s-kit.sh dir containerd: containerd 2, configured with
#                     containerd2-cri.toml.in; the tables appended are moved to its CRI plugins).
#   --subnet CIDR     the pod network's /24 (default: 10.209.<index>.0/24, claimed); its first
#                     address is the bridge's.
#   --vhive-runtime TEMPLATE
#                     vhive's runtime table (default containerd-vhive.toml.in; a node's own
#                     configuration, deploy/kubernetes/, say), appended as --config-append is.
#   --ipam-dir DIR    where host-local keeps its IP allocations (default: under the temporary
#                     directory). The CRI suite looks for them under /var/lib/cni.
#   --shim-dir DIR    put DIR first on containerd's PATH, where it finds runtime shims such as
#                     containerd-shim-vhive-v2 (repeatable).
#   --cni-plugin FILE a CNI plugin to offer besides Debian's (repeatable).
#   --config-append TEMPLATE
#                     a TOML template appended to containerd's configuration, filled in as
#                     containerd-cri.toml.in is (@DIR@ ...): more runtimes, say (repeatable).
#   --mirror-archives DIR
#                     serve the OCI image archives in DIR (scripts/lib/cri-images.sh) from a
#                     registry on a loopback port (oci-registry.mjs), and have the CRI plugin
#                     pull the registries they are named after (ghcr.io, ...) from it: a test
#                     that removes an image pulls it back without the internet.
#   --restart-delay S seconds the supervisor waits before restarting containerd (default 1). The
#                     CRI suite's restart test needs longer (containerd's CI waits 10): it
#                     polls each second to see containerd gone before it looks for the new one.
#   --log-level L     containerd's log level (default info).

# Nothing here may collide with the host's own containerd or another private instance: names
# and the subnet carry an index claimed atomically by creating the bridge (see _pcd_claim_network).
_PCD_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_PCD_SUBNET_PREFIX=10.209          # pod subnets 10.209.<index>.0/24
_PCD_SANDBOX_IMAGE=registry.k8s.io/pause:3.6   # built and imported by scripts/lib/cri-images.sh
_PCD_CNI_BIN_DIR=/usr/lib/cni      # Debian's containernetworking-plugins
_PCD_CONTAINERD=/usr/bin/containerd # or DIR/containerd (--containerd DIR), with DIR's ctr
_PCD_CTR=ctr
# runc puts a container's cgroups under /<containerd namespace>/<container id> in every
# hierarchy; runc delete removes the container's, not the namespace's.
_pcd_cgroup_roots() { awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo; }

# Host directories containerd 1.6's shims (/run/containerd/s), ctr (/run/containerd/fifo, and
# runc's default root /run/containerd/runc for `ctr run`) and libcni (/var/lib/cni) create
# whatever the configuration says. One the instance found absent loses its empty directories at
# stop, itself included: whatever is left in it is someone else's.
_PCD_HOST_DIRS=(/run/containerd /var/lib/cni)

_pcd_say() { printf 'private-containerd: %s\n' "$*" >&2; }
_pcd_fail() { _pcd_say "$*"; return 1; }

# One JSON line on stdout in `run` mode (the TypeScript side reads them); nothing otherwise.
_pcd_event() {
  [ "${_PCD_EVENTS:-0}" = 1 ] || return 0
  printf '{"event":"%s"%s}\n' "$1" "${2:+,$2}"
}

_pcd_json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# The start time of a process (clock ticks since boot), so a recorded pid is not mistaken for
# a later process that reused it.
_pcd_start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  printf '%s' "${20}"
}

# Whether this process may lower OOM scores (CAP_SYS_RESOURCE, bit 24 of CapEff).
_pcd_has_cap_sys_resource() {
  local caps
  caps=$(awk '$1 == "CapEff:" {print $2}' /proc/self/status)
  (( (16#$caps >> 24) & 1 ))
}

_pcd_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Wait up to $2 tenths of a second for process $1 to end; fails if it is still there.
_pcd_wait_gone() {
  local tries
  for ((tries = 0; tries < $2; tries++)); do
    _pcd_alive "$1" || return 0
    sleep 0.1
  done
  ! _pcd_alive "$1"
}

_pcd_ctr() { timeout 20 "$_PCD_CTR" --address "$PRIVATE_CONTAINERD_SOCKET" "$@"; }

# Claim a pod network: the first index whose bridge does not exist and whose /24 nobody routes.
# Creating the bridge is the claim, atomic against another instance starting at the same time.
# The bridge gets the subnet's first address itself, so the host reaches the pods (the CNI
# bridge plugin's isGateway would do the same but also turn on IP forwarding host-wide).
# With --subnet, that /24 (which nobody may route yet) on the first free bridge.
_pcd_claim_network() {
  local index subnet fixed=$1
  if [ -n "$fixed" ] && [ -n "$(ip -4 route show table all root "$fixed")" ]; then
    _pcd_fail "the pod subnet $fixed is routed already"
    return 1
  fi
  for ((index = 1; index <= 254; index++)); do
    subnet=${fixed:-$_PCD_SUBNET_PREFIX.$index.0/24}
    [ -z "$(ip -4 route show table all root "$subnet")" ] || continue
    ip link add "vhive-cri$index" type bridge 2>/dev/null || continue
    PRIVATE_CONTAINERD_BRIDGE=vhive-cri$index
    PRIVATE_CONTAINERD_NETWORK=vhive-cri$index
    PRIVATE_CONTAINERD_BIN_NAME=vhive-ctrd$index
    PRIVATE_CONTAINERD_SUBNET=$subnet
    PRIVATE_CONTAINERD_GATEWAY=${subnet%.*/24}.1
    if ! ip addr add "$PRIVATE_CONTAINERD_GATEWAY/24" dev "$PRIVATE_CONTAINERD_BRIDGE" ||
      ! ip link set "$PRIVATE_CONTAINERD_BRIDGE" up; then
      ip link del "$PRIVATE_CONTAINERD_BRIDGE"
      _pcd_fail "could not set up bridge $PRIVATE_CONTAINERD_BRIDGE"
      return 1
    fi
    return 0
  done
  _pcd_fail "no free pod network: bridges vhive-cri1..254 all exist or their subnets are routed"
}

_pcd_fill() { # template output: replaces @NAME@ with the values given as NAME=VALUE arguments
  local template=$1 output=$2 text pair
  shift 2
  text=$(<"$template")
  # Both sides quoted: bash 5.2 would otherwise read "&" in a value as the matched text.
  for pair in "$@"; do text=${text//"@${pair%%=*}@"/"${pair#*=}"}; done
  printf '%s\n' "$text" >"$output"
}

# private_containerd_fill TEMPLATE OUTPUT: a template filled in with this instance's values,
# @DIR@, @NETWORK@, @BRIDGE@, @SUBNET@, @GATEWAY@ and @IPAM_DIR@ (a CNI configuration of a
# runtime's own, say).
private_containerd_fill() {
  _pcd_fill "$1" "$2" "DIR=$PRIVATE_CONTAINERD_DIR" "NETWORK=$PRIVATE_CONTAINERD_NETWORK" \
    "BRIDGE=$PRIVATE_CONTAINERD_BRIDGE" "SUBNET=$PRIVATE_CONTAINERD_SUBNET" \
    "GATEWAY=$PRIVATE_CONTAINERD_GATEWAY" "IPAM_DIR=$_PCD_IPAM_DIR"
}

# Everything stop needs, so that it works from the directory alone (a sweep after a crash).
_pcd_write_instance() {
  local name
  {
    for name in PRIVATE_CONTAINERD_DIR PRIVATE_CONTAINERD_SOCKET PRIVATE_CONTAINERD_CRI_ROOT \
      PRIVATE_CONTAINERD_BIN_NAME PRIVATE_CONTAINERD_BRIDGE PRIVATE_CONTAINERD_NETWORK \
      PRIVATE_CONTAINERD_SUBNET PRIVATE_CONTAINERD_GATEWAY PRIVATE_CONTAINERD_LOG \
      _PCD_IPAM_DIR _PCD_OWNER_PID _PCD_OWNER_START _PCD_NEW_HOST_DIRS _PCD_CTR; do
      printf '%s=%q\n' "$name" "${!name}"
    done
  } >"$PRIVATE_CONTAINERD_DIR/instance.env"
}

# Restart containerd whenever it exits, until the directory says stopping. setsid keeps it out
# of the terminal's process group, so Ctrl-C reaches the script, which then stops everything in
# order, instead of containerd quitting on its own.
_pcd_supervise() {
  local path=$1 delay=$2 pid
  while [ ! -e "$PRIVATE_CONTAINERD_DIR/stopping" ]; do
    PATH=$path setsid "$PRIVATE_CONTAINERD_DIR/bin/$PRIVATE_CONTAINERD_BIN_NAME" \
      --config "$PRIVATE_CONTAINERD_DIR/config.toml" >>"$PRIVATE_CONTAINERD_LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PRIVATE_CONTAINERD_DIR/containerd.pid"
    _pcd_event started "\"pid\":$pid"
    # (stderr: bash would report a killed containerd as "Killed"; the line below says it.)
    { wait "$pid"; } 2>/dev/null || true
    [ -e "$PRIVATE_CONTAINERD_DIR/stopping" ] && break
    _pcd_say "containerd (pid $pid) exited; restarting it in $delay s"
    sleep "$delay" # and a containerd that cannot start does not spin
  done
}

# The registry mirror: started in the background, ready once it printed its port, then one
# hosts.toml per registry its images name, which the CRI plugin reads at each pull.
_pcd_start_mirror() {
  local archives=("$1"/*.tar) pid tries line host port
  [ -f "${archives[0]}" ] || { _pcd_fail "no OCI image archives (*.tar) in $1"; return 1; }
  mkdir -p "$PRIVATE_CONTAINERD_DIR/registry"
  node "$_PCD_LIB_DIR/oci-registry.mjs" --work "$PRIVATE_CONTAINERD_DIR/registry" "${archives[@]}" \
    >"$PRIVATE_CONTAINERD_DIR/registry.json" 2>>"$PRIVATE_CONTAINERD_DIR/registry.log" </dev/null &
  pid=$!
  echo "$pid" >"$PRIVATE_CONTAINERD_DIR/registry.pid"
  for ((tries = 0; tries < 300; tries++)); do
    line=$(head -n 1 "$PRIVATE_CONTAINERD_DIR/registry.json")
    [ -n "$line" ] && break
    _pcd_alive "$pid" || { _pcd_fail "the registry mirror exited: $(tail -n 5 "$PRIVATE_CONTAINERD_DIR/registry.log")"; return 1; }
    sleep 0.1
  done
  [ -n "$line" ] || { _pcd_fail "the registry mirror did not start within 30 s"; return 1; }
  port=$(node -e 'console.log(JSON.parse(process.argv[1]).port)' "$line")
  for host in $(node -e 'for (const n of new Set(JSON.parse(process.argv[1]).images.map((i) => i.split("/")[0]))) console.log(n)' "$line"); do
    mkdir -p "$PRIVATE_CONTAINERD_DIR/certs.d/$host"
    printf 'server = "https://%s"\n\n[host."http://127.0.0.1:%s"]\n  capabilities = ["pull", "resolve"]\n' "$host" "$port" \
      >"$PRIVATE_CONTAINERD_DIR/certs.d/$host/hosts.toml"
  done
}

# Until containerd answers on its socket and its CRI plugin loaded, racing containerd's exit.
_pcd_wait_ready() {
  local tries pid status
  for ((tries = 0; tries < 300; tries++)); do
    pid=$(cat "$PRIVATE_CONTAINERD_DIR/containerd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && ! _pcd_alive "$pid"; then
      _pcd_say "containerd exited during start; the end of its log ($PRIVATE_CONTAINERD_LOG):"
      tail -n 20 "$PRIVATE_CONTAINERD_LOG" >&2
      return 1
    fi
    if [ -S "$PRIVATE_CONTAINERD_SOCKET" ] && _pcd_ctr version >/dev/null 2>&1; then
      status=$(_pcd_ctr plugins ls 2>/dev/null | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" {print $NF}')
      [ "$status" = ok ] && return 0
      _pcd_say "containerd's CRI plugin did not load (status: ${status:-absent}); from its log:"
      grep -i 'cri' "$PRIVATE_CONTAINERD_LOG" | grep -iE 'error|fail' | tail -n 5 >&2
      return 1
    fi
    sleep 0.1
  done
  _pcd_fail "containerd did not answer on $PRIVATE_CONTAINERD_SOCKET within 30 s; see $PRIVATE_CONTAINERD_LOG"
}

private_containerd_start() {
  local shim_path="" log_level=info plugins=() appends=() mirror="" restart_delay=1 subnet=""
  local containerd_dir="" vhive_runtime=$_PCD_LIB_DIR/containerd-vhive.toml.in
  _PCD_IPAM_DIR=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --containerd) containerd_dir=$(cd "$2" && pwd) || return 1; shift 2 ;;
      --subnet) subnet=$2; shift 2 ;;
      --vhive-runtime) vhive_runtime=$(realpath "$2"); shift 2 ;;
      --ipam-dir) _PCD_IPAM_DIR=$2; shift 2 ;;
      --shim-dir) shim_path+="$(cd "$2" && pwd):"; shift 2 ;;
      --cni-plugin) plugins+=("$(realpath "$2")"); shift 2 ;;
      --config-append) appends+=("$(realpath "$2")"); shift 2 ;;
      --mirror-archives) mirror=$(realpath "$2"); shift 2 ;;
      --restart-delay) restart_delay=$2; shift 2 ;;
      --log-level) log_level=$2; shift 2 ;;
      *) _pcd_fail "unknown option $1 (known: --containerd DIR, --subnet CIDR, --vhive-runtime TEMPLATE, --ipam-dir DIR, --shim-dir DIR, --cni-plugin FILE, --config-append TEMPLATE, --mirror-archives DIR, --restart-delay S, --log-level LEVEL)"; return 1 ;;
    esac
  done
  [ "$(id -u)" -eq 0 ] || { _pcd_fail "a private containerd needs root (network namespaces, mounts, a bridge)"; return 1; }
  case "$subnet" in
    "" | *.*.*.0/24) ;;
    *) _pcd_fail "--subnet takes a /24 ending in .0/24 (got $subnet)"; return 1 ;;
  esac
  local runc_shim=containerd-shim-runc-v2
  if [ -n "$containerd_dir" ]; then
    _PCD_CONTAINERD=$containerd_dir/containerd
    _PCD_CTR=$containerd_dir/ctr
    runc_shim=$containerd_dir/containerd-shim-runc-v2
    # containerd finds runc's shim on its PATH: the release's own, first.
    shim_path+="$containerd_dir:"
  fi
  local tool
  for tool in "$_PCD_CONTAINERD" "$_PCD_CTR" runc "$runc_shim" ip setsid timeout "$_PCD_CNI_BIN_DIR/bridge" "$_PCD_CNI_BIN_DIR/host-local" "$_PCD_CNI_BIN_DIR/loopback"; do
    command -v "$tool" >/dev/null || { _pcd_fail "$tool is missing: run scripts/setup.sh (containerd, runc, containernetworking-plugins)"; return 1; }
  done
  if [ -n "${PRIVATE_CONTAINERD_DIR:-}" ]; then
    _pcd_fail "a private containerd already runs in this shell ($PRIVATE_CONTAINERD_DIR)"
    return 1
  fi
  private_containerd_sweep

  trap private_containerd_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  PRIVATE_CONTAINERD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vhive-containerd-XXXXXX")
  PRIVATE_CONTAINERD_SOCKET=$PRIVATE_CONTAINERD_DIR/containerd.sock
  PRIVATE_CONTAINERD_CRI_ROOT=$PRIVATE_CONTAINERD_DIR/root/io.containerd.grpc.v1.cri
  PRIVATE_CONTAINERD_LOG=$PRIVATE_CONTAINERD_DIR/containerd.log
  _PCD_OWNER_PID=$$
  _PCD_OWNER_START=$(_pcd_start_time $$)
  local dir
  _PCD_NEW_HOST_DIRS=""
  for dir in "${_PCD_HOST_DIRS[@]}"; do [ -e "$dir" ] || _PCD_NEW_HOST_DIRS+="$dir "; done
  # The cgroups there are before; a namespace's cgroup not among them is the instance's to remove.
  for dir in $(_pcd_cgroup_roots); do find "$dir" -mindepth 1 -maxdepth 1 -type d; done >"$PRIVATE_CONTAINERD_DIR/cgroups-before"
  _pcd_claim_network "$subnet" || return 1
  [ -n "$_PCD_IPAM_DIR" ] || _PCD_IPAM_DIR=$PRIVATE_CONTAINERD_DIR/cni/ipam
  _pcd_write_instance

  mkdir -p "$PRIVATE_CONTAINERD_DIR"/{bin,cni/bin,cni/net.d,root,state,tmp,opt,runc}
  ln -s "$_PCD_CONTAINERD" "$PRIVATE_CONTAINERD_DIR/bin/$PRIVATE_CONTAINERD_BIN_NAME"
  # containerd 1.6 takes one CNI plugin directory: Debian's plugins and the extra ones, linked.
  local plugin
  for plugin in "$_PCD_CNI_BIN_DIR"/* "${plugins[@]}"; do ln -sf "$plugin" "$PRIVATE_CONTAINERD_DIR/cni/bin/"; done
  local restrict_oom=true major
  if _pcd_has_cap_sys_resource; then restrict_oom=false; fi
  major=$(_pcd_containerd_major) || return 1
  local template=$_PCD_LIB_DIR/containerd-cri.toml.in
  [ "$major" -ge 2 ] && template=$_PCD_LIB_DIR/containerd2-cri.toml.in
  _pcd_fill "$template" "$PRIVATE_CONTAINERD_DIR/config.toml" \
    "DIR=$PRIVATE_CONTAINERD_DIR" "LOG_LEVEL=$log_level" "SANDBOX_IMAGE=$_PCD_SANDBOX_IMAGE" \
    "CNI_BIN_DIR=$PRIVATE_CONTAINERD_DIR/cni/bin" "RESTRICT_OOM_SCORE_ADJ=$restrict_oom"
  local append
  for append in "$vhive_runtime" "${appends[@]}"; do
    private_containerd_fill "$append" "$PRIVATE_CONTAINERD_DIR/config-append.toml"
    if [ "$major" -ge 2 ]; then _pcd_tables_for_containerd2 <"$PRIVATE_CONTAINERD_DIR/config-append.toml"; else cat "$PRIVATE_CONTAINERD_DIR/config-append.toml"; fi >>"$PRIVATE_CONTAINERD_DIR/config.toml"
    rm "$PRIVATE_CONTAINERD_DIR/config-append.toml"
  done
  _pcd_fill "$_PCD_LIB_DIR/cni-bridge.conflist.in" "$PRIVATE_CONTAINERD_DIR/cni/net.d/10-$PRIVATE_CONTAINERD_NETWORK.conflist" \
    "NETWORK=$PRIVATE_CONTAINERD_NETWORK" "BRIDGE=$PRIVATE_CONTAINERD_BRIDGE" "SUBNET=$PRIVATE_CONTAINERD_SUBNET" \
    "GATEWAY=$PRIVATE_CONTAINERD_GATEWAY" "IPAM_DIR=$_PCD_IPAM_DIR"

  if [ -n "$mirror" ]; then _pcd_start_mirror "$mirror" || return 1; fi
  _pcd_supervise "$shim_path$PATH" "$restart_delay" &
  _PCD_SUPERVISOR_PID=$!
  echo "$_PCD_SUPERVISOR_PID" >"$PRIVATE_CONTAINERD_DIR/supervisor.pid"
  _pcd_wait_ready || return 1
  export PRIVATE_CONTAINERD_DIR PRIVATE_CONTAINERD_SOCKET PRIVATE_CONTAINERD_CRI_ROOT PRIVATE_CONTAINERD_BIN_NAME \
    PRIVATE_CONTAINERD_BRIDGE PRIVATE_CONTAINERD_NETWORK PRIVATE_CONTAINERD_SUBNET PRIVATE_CONTAINERD_GATEWAY PRIVATE_CONTAINERD_LOG
  _pcd_say "containerd ready on $PRIVATE_CONTAINERD_SOCKET (pods on $PRIVATE_CONTAINERD_BRIDGE, $PRIVATE_CONTAINERD_SUBNET)"
}

# containerd's major version (1 for Debian's 1.6, 2 for the kit's).
_pcd_containerd_major() {
  local version
  version=$("$_PCD_CONTAINERD" --version 2>/dev/null | awk '{print $3}')
  version=${version#v}
  case "$version" in
    [0-9]*) echo "${version%%.*}" ;;
    *) _pcd_fail "could not read $_PCD_CONTAINERD's version"; return 1 ;;
  esac
}

# Runtime tables written for containerd 1.x (plugins."io.containerd.grpc.v1.cri".containerd...)
# where containerd 2 reads them (plugins."io.containerd.cri.v1.runtime".containerd...), as
# containerd's own migration of a version 2 configuration moves them. A table already written
# for containerd 2 is left as it is.
_pcd_tables_for_containerd2() {
  sed 's/^\(\s*\)\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\./\1[plugins."io.containerd.cri.v1.runtime".containerd./'
}

# Kill and delete every task and container, in every namespace, through containerd and so
# through each container's own shim (runc's or vhive's), while containerd still runs.
_pcd_remove_workloads() {
  local ns id
  for ns in $(_pcd_ctr namespaces ls -q 2>/dev/null); do
    for id in $(_pcd_ctr --namespace "$ns" tasks ls -q 2>/dev/null); do
      _pcd_ctr --namespace "$ns" tasks delete --force "$id" >/dev/null 2>&1 || true
    done
    for id in $(_pcd_ctr --namespace "$ns" containers ls -q 2>/dev/null); do
      _pcd_ctr --namespace "$ns" containers delete "$id" >/dev/null 2>&1 || true
    done
  done
}

# Pids of the processes whose command line matches a case pattern: the shims serving this
# instance have `-address <our socket>`; anything it ran from its directory names that.
_pcd_pids_matching() {
  local proc args
  for proc in /proc/[0-9]*; do
    { args=$(tr '\0' ' ' <"$proc/cmdline"); } 2>/dev/null || continue # it may end meanwhile
    # shellcheck disable=SC2254
    case " $args" in $1) echo "${proc#/proc/}" ;; esac
  done
}

_pcd_stop_containerd() {
  local pid supervisor
  touch "$PRIVATE_CONTAINERD_DIR/stopping"
  pid=$(cat "$PRIVATE_CONTAINERD_DIR/containerd.pid" 2>/dev/null || true)
  if _pcd_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    _pcd_wait_gone "$pid" 100 || kill -KILL "$pid" 2>/dev/null || true
  fi
  supervisor=$(cat "$PRIVATE_CONTAINERD_DIR/supervisor.pid" 2>/dev/null || true)
  if [ -n "${_PCD_SUPERVISOR_PID:-}" ]; then
    wait "$_PCD_SUPERVISOR_PID" 2>/dev/null || true
  elif _pcd_alive "$supervisor"; then
    # A sweep: the supervisor is not this shell's child. It exits on its own once containerd
    # has; if it sleeps before a restart, end it.
    _pcd_wait_gone "$supervisor" 20 || kill -TERM "$supervisor" 2>/dev/null || true
  fi
  _pcd_wait_gone "$pid" 50 || true
  pid=$(cat "$PRIVATE_CONTAINERD_DIR/registry.pid" 2>/dev/null || true)
  if _pcd_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || _pcd_wait_gone "$pid" 50 || true
  fi
}

# What a crashed containerd or shim left: shims killed, runc containers deleted (killing their
# processes and removing their cgroups), any process still running a program from the
# directory killed (a CNI plugin containerd was killed in the middle of), mounts under the
# directory unmounted (rootfs overlays, /dev/shm of sandboxes, network namespaces: a namespace
# goes, and its veth pair with it, once its last mount and process are gone).
_pcd_kill_all() {
  local pid
  for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "$@"; do _pcd_wait_gone "$pid" 50 || true; done
}

# The sockets of the shims about to be killed, which they would have removed themselves:
# runc's at /run/containerd/s/<sha256(address/namespace/id)> (containerd's shim library,
# SocketAddress), vhive's at the -socket its server was given (and the pod's claim beside it).
_pcd_shim_sockets() {
  local pid args namespace id socket
  for pid in "$@"; do
    { args=$(tr '\0' '\n' <"/proc/$pid/cmdline"); } 2>/dev/null || continue
    namespace=$(printf '%s\n' "$args" | sed -n '/^-namespace$/{n;p;q}')
    id=$(printf '%s\n' "$args" | sed -n '/^-id$/{n;p;q}')
    socket=$(printf '%s\n' "$args" | sed -n '/^-socket$/{n;p;q}')
    if [ -n "$socket" ]; then
      printf '%s\n%s.function\n' "$socket" "$socket"
    elif [ -n "$namespace" ] && [ -n "$id" ]; then
      printf '/run/containerd/s/%s\n' "$(printf '%s' "$PRIVATE_CONTAINERD_SOCKET/$namespace/$id" | sha256sum | cut -d' ' -f1)"
    fi
  done
}

_pcd_sweep_leftovers() {
  local root id mounts round shims
  shims=$(_pcd_pids_matching "* -address $PRIVATE_CONTAINERD_SOCKET *")
  local sockets
  # shellcheck disable=SC2086
  sockets=$(_pcd_shim_sockets $shims)
  # shellcheck disable=SC2086
  _pcd_kill_all $shims
  for id in $sockets; do rm -f "$id"; done
  for root in "$PRIVATE_CONTAINERD_DIR"/runc/*/; do
    [ -d "$root" ] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true; done
  done
  # shellcheck disable=SC2046
  _pcd_kill_all $(_pcd_pids_matching "* $PRIVATE_CONTAINERD_DIR/*")
  for ((round = 0; round < 5; round++)); do
    # mountinfo's fifth field is the mount point (octal escapes for spaces; our paths have none).
    mounts=$(awk -v d="$PRIVATE_CONTAINERD_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ -n "$mounts" ] || break
    for id in $mounts; do umount "$id" 2>/dev/null || umount -l "$id" 2>/dev/null || true; done
  done
}

# Namespaces of the instance: containerd's own list while it runs, else its state directories.
_pcd_namespaces() {
  {
    _pcd_ctr namespaces ls -q 2>/dev/null || true
    ls "$PRIVATE_CONTAINERD_DIR/state/io.containerd.runtime.v2.task" "$PRIVATE_CONTAINERD_DIR/runc" 2>/dev/null || true
  } | grep -v '^$\|:$' | sort -u || true
}

_pcd_remove_cgroups() {
  local ns root dir
  for ns in $(cat "$PRIVATE_CONTAINERD_DIR/namespaces" 2>/dev/null); do
    for root in $(_pcd_cgroup_roots); do
      dir=$root/$ns
      [ -d "$dir" ] || continue
      grep -qxF "$dir" "$PRIVATE_CONTAINERD_DIR/cgroups-before" && continue
      # Innermost first; rmdir refuses a cgroup that still has processes or children.
      find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
}

_pcd_remove_network() {
  local link
  if ip link show "$PRIVATE_CONTAINERD_BRIDGE" >/dev/null 2>&1; then
    for link in $(ip -o link show master "$PRIVATE_CONTAINERD_BRIDGE" | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$link" 2>/dev/null || true
    done
    ip link del "$PRIVATE_CONTAINERD_BRIDGE" 2>/dev/null || true
  fi
  # libcni's cached results: <network>-<sandbox>-eth0 for the pod network, and
  # cni-loopback-<sandbox>-lo for the loopback network containerd adds to every pod.
  rm -f /var/lib/cni/results/"$PRIVATE_CONTAINERD_NETWORK"-*
  local sandbox
  for sandbox in $_PCD_SANDBOXES; do rm -f "/var/lib/cni/results/cni-loopback-$sandbox-lo"; done
  case "$_PCD_IPAM_DIR" in
    "$PRIVATE_CONTAINERD_DIR"/*) ;;
    ?*) rm -rf "${_PCD_IPAM_DIR:?}/$PRIVATE_CONTAINERD_NETWORK" ;;
  esac
  local dir
  for dir in $_PCD_NEW_HOST_DIRS; do
    [ -d "$dir" ] && find "$dir" -depth -type d -empty -delete 2>/dev/null || true
  done
}

# Stop the instance this shell started (or, from a sweep, the one PRIVATE_CONTAINERD_DIR
# names) and remove all it made. Safe to call twice and after a failed start.
private_containerd_stop() {
  # Best effort to the end: a step that fails must not stop the steps after it, whatever the
  # caller's set -e says (`local -` keeps the change to this function).
  local -
  set +e +o pipefail
  trap - EXIT INT TERM
  if [ -n "${PRIVATE_CONTAINERD_DIR:-}" ] && [ -f "$PRIVATE_CONTAINERD_DIR/instance.env" ]; then
    # shellcheck disable=SC1091
    . "$PRIVATE_CONTAINERD_DIR/instance.env"
    local pid
    pid=$(cat "$PRIVATE_CONTAINERD_DIR/containerd.pid" 2>/dev/null || true)
    # The pods' ids, before their removal takes their folders: libcni keeps results by them.
    _PCD_SANDBOXES=$(ls "$PRIVATE_CONTAINERD_CRI_ROOT/sandboxes" 2>/dev/null || true)
    if _pcd_alive "$pid" && _pcd_ctr version >/dev/null 2>&1; then _pcd_remove_workloads; fi
    _pcd_namespaces >"$PRIVATE_CONTAINERD_DIR/namespaces"
    _pcd_stop_containerd
    _pcd_sweep_leftovers
    _pcd_remove_cgroups
    _pcd_remove_network
    rm -rf "$PRIVATE_CONTAINERD_DIR"
    _pcd_say "stopped; removed $PRIVATE_CONTAINERD_DIR and $PRIVATE_CONTAINERD_BRIDGE"
  elif [ -n "${PRIVATE_CONTAINERD_DIR:-}" ]; then
    rm -rf "$PRIVATE_CONTAINERD_DIR"
  fi
  unset PRIVATE_CONTAINERD_DIR PRIVATE_CONTAINERD_SOCKET PRIVATE_CONTAINERD_CRI_ROOT PRIVATE_CONTAINERD_BIN_NAME \
    PRIVATE_CONTAINERD_BRIDGE PRIVATE_CONTAINERD_NETWORK PRIVATE_CONTAINERD_SUBNET PRIVATE_CONTAINERD_GATEWAY \
    PRIVATE_CONTAINERD_LOG _PCD_SUPERVISOR_PID
  return 0
}

# Stop every instance whose owner (the shell that started it) is gone: a script killed with
# SIGKILL, a machine whose test run crashed. Run by start; harmless when there is none.
private_containerd_sweep() {
  local env owner start
  for env in "${TMPDIR:-/tmp}"/vhive-containerd-*/instance.env; do
    [ -f "$env" ] || continue
    owner=$(. "$env" && echo "$_PCD_OWNER_PID")
    start=$(. "$env" && echo "$_PCD_OWNER_START")
    [ "$(_pcd_start_time "$owner" 2>/dev/null)" = "$start" ] && continue
    _pcd_say "removing the private containerd of a process that is gone: $(dirname "$env")"
    (PRIVATE_CONTAINERD_DIR=$(dirname "$env") && private_containerd_stop) || true
  done
}

# `bash private-containerd.sh run [options]`: see the header.
_pcd_run() {
  _PCD_EVENTS=1
  private_containerd_start "$@" || exit 1
  printf '{"event":"ready","dir":%s,"socket":%s,"criRoot":%s,"binName":%s,"bridge":%s,"network":%s,"subnet":%s,"gateway":%s,"log":%s}\n' \
    "$(_pcd_json_string "$PRIVATE_CONTAINERD_DIR")" "$(_pcd_json_string "$PRIVATE_CONTAINERD_SOCKET")" \
    "$(_pcd_json_string "$PRIVATE_CONTAINERD_CRI_ROOT")" "$(_pcd_json_string "$PRIVATE_CONTAINERD_BIN_NAME")" \
    "$(_pcd_json_string "$PRIVATE_CONTAINERD_BRIDGE")" "$(_pcd_json_string "$PRIVATE_CONTAINERD_NETWORK")" \
    "$(_pcd_json_string "$PRIVATE_CONTAINERD_SUBNET")" "$(_pcd_json_string "$PRIVATE_CONTAINERD_GATEWAY")" \
    "$(_pcd_json_string "$PRIVATE_CONTAINERD_LOG")"
  # Block until stdin closes; a trap (SIGTERM, SIGINT) interrupts the read and exits.
  while read -r _; do :; done
  exit 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    run) shift; _pcd_run "$@" ;;
    sweep) private_containerd_sweep ;;
    *) echo "usage: bash $0 run [options, see the header] | sweep" >&2; exit 2 ;;
  esac
fi
