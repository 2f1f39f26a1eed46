#!/usr/bin/env bash
# A private Kubernetes cluster on this machine, started from binaries as Kubernetes'
# hack/local-up-cluster.sh starts one, with two nodes that run vhive (as root, after
# scripts/setup.sh):
#
#   bash scripts/k8s-cluster.sh up        # etcd, API server, controller-manager, scheduler, 2 nodes
#   bash scripts/k8s-cluster.sh status    # what runs
#   eval "$(bash scripts/k8s-cluster.sh env)"   # PATH with the kit's kubectl and crictl, KUBECONFIG
#   bash scripts/k8s-cluster.sh import FILE.tar # an image archive into every node's containerd (k8s.io)
#   bash scripts/k8s-cluster.sh restart NODE kubelet|containerd   # kill it; its supervisor starts it again
#   bash scripts/k8s-cluster.sh down      # stop everything and remove all it made
#
# The programs come from the Kubernetes kit (scripts/lib/k8s-kit.sh: Kubernetes, containerd 2
# and cri-tools built from their pinned Go modules; etcd, runc and the CNI plugins are Debian's).
# The control plane runs on the host; each node is a network namespace of its own (the project's
# own test hosts) joined to a bridge on the host by a veth pair, with its own containerd (a
# private one, scripts/lib/private-containerd.sh, with vhive's runtime configured as in
# deploy/kubernetes/containerd2-config.toml), kubelet, kube-proxy, state folders, node name,
# address and pod CIDR. Addresses, for the cluster index I (the first free of 1..9):
#   10.(220+I).200.1        the host on the cluster's bridge vk8sI: the API server's address
#   10.(220+I).200.(10+N)   node N (vk8sI-nodeN)
#   10.(220+I).N.0/24       node N's pods; 10.(220+I).0.0/17 all pods (kube-proxy's cluster CIDR)
#   10.(220+I).128.0/24     Services (ClusterIPs)
# The host routes each node's pods to it and the Services to node 1, whose kube-proxy forwards
# them, so pod IPs and ClusterIPs answer from the host's shell. etcd listens on loopback only;
# the API server on the bridge; kubelets and kube-proxies in their node's namespace. Nothing
# listens anywhere else, and nothing routes off the machine.
#
# `up` starts a keeper process that owns every component: it restarts one that exits (as systemd
# would on a node) and, on `down` (SIGTERM), on Ctrl-C of `up`, or when a start fails, stops them
# in order and removes every process, namespace, mount, interface, cgroup and file the cluster
# made, and puts back the kernel settings kubelet changes. `down` also cleans up after a keeper
# that was killed outright.
#
# Options (before the command): --dir DIR (default $VHIVE_K8S_DIR, else /var/lib/vhive-k8s): the
# cluster's folder, everything it keeps; one cluster per folder.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$ROOT/scripts/k8s-cluster.sh
# shellcheck source=lib/k8s-kit.sh
. "$ROOT/scripts/lib/k8s-kit.sh"
# shellcheck source=lib/k8s-pki.sh
. "$ROOT/scripts/lib/k8s-pki.sh"

NODES=(1 2)
NODE_PREFIX=vhive-node          # node names vhive-node1, vhive-node2
ETCD=/usr/bin/etcd              # Debian's etcd-server
VHIVE_RUNTIME_CONFIG=$ROOT/deploy/kubernetes/containerd2-config.toml
UP_TIMEOUT_S=300
DOWN_TIMEOUT_S=300
# The kernel settings kubelet sets at start (pkg/kubelet/cm setupKernelTunables); down puts back
# what was there before.
KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() { printf 'k8s-cluster: %s\n' "$*" >&2; exit 1; }

DIR=${VHIVE_K8S_DIR:-/var/lib/vhive-k8s}
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
COMMAND=${1:-}
[ $# -gt 0 ] && shift
DIR=$(realpath -m "$DIR")
[ "$(id -u)" -eq 0 ] || fail "this must run as root (network namespaces, cgroups, containerd): log in as root or use sudo"

# --- the cluster's addresses and names ----------------------------------------------------------

# Everything below depends on the index; cluster.env keeps it, so every command finds it again.
load_cluster() {
  [ -f "$DIR/cluster.env" ] || return 1
  # shellcheck disable=SC1091
  . "$DIR/cluster.env"
  NET=10.$((220 + INDEX))
  BRIDGE=vk8s$INDEX
  HOST_IP=$NET.200.1
  SERVICE_CIDR=$NET.128.0/24
  SERVICE_IP=$NET.128.1
  CLUSTER_CIDR=$NET.0.0/17
  ETCD_PORT=$((23790 + 2 * INDEX))
  API=https://$HOST_IP:6443
  return 0
}
node_name() { echo "$NODE_PREFIX$1"; }
node_ns() { echo "vk8s$INDEX-node$1"; }
node_ip() { echo "$NET.200.$((10 + $1))"; }
node_veth() { echo "vk8s${INDEX}n$1"; }
node_subnet() { echo "$NET.$1.0/24"; }
node_dir() { echo "$DIR/node$1"; }
node_cgroup() { echo "vhive-k8s$INDEX-node$1"; }

# The claim: the first index whose bridge can be created and whose /16 nobody routes.
claim_index() {
  local index
  for ((index = 1; index <= 9; index++)); do
    [ -z "$(ip -4 route show table all root "10.$((220 + index)).0.0/16")" ] || continue
    ip link add "vk8s$index" type bridge 2>/dev/null || continue
    echo "$index"
    return 0
  done
  return 1
}

# --- processes ----------------------------------------------------------------------------------

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

wait_gone() { # pid, tenths of a second
  local tries
  for ((tries = 0; tries < $2; tries++)); do
    alive "$1" || return 0
    sleep 0.1
  done
  ! alive "$1"
}

# Run a component until the cluster stops, restarting it when it exits (after a second), with
# its pid in pids/NAME and its output in logs/NAME.log. Run in the background by the keeper.
supervise() {
  local name=$1 pid
  shift
  close_keeper_fds
  while [ ! -e "$DIR/stopping" ]; do
    "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$DIR/pids/$name"
    { wait "$pid"; } 2>/dev/null || true
    [ -e "$DIR/stopping" ] && break
    printf '%s: exited; restarting it\n' "$name" >>"$DIR/logs/$name.log"
    sleep 1
  done
}

# Stop one supervised component: no restart (stopping is set), SIGTERM, then SIGKILL.
stop_component() {
  local pid
  pid=$(cat "$DIR/pids/$1" 2>/dev/null || true)
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" 150 || kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 50 || true
}

# nsenter, not `ip netns exec`: that also mounts a sysfs of the namespace's own over /sys, which
# hides the host's cgroup hierarchies from kubelet, containerd and runc.
in_node() { local n=$1; shift; nsenter "--net=$(node_netns "$n")" -- "$@"; }

# The write ends of the nodes' containerd FIFOs: the keeper's alone, so that its exit (a SIGKILL
# too) closes them and each node's containerd stops itself. Every other child closes them.
KEEPER_FDS=""
close_keeper_fds() {
  local fd
  for fd in $KEEPER_FDS; do eval "exec $fd>&-"; done
}
node_netns() { echo "/run/netns/$(node_ns "$1")"; }

# --- configuration ------------------------------------------------------------------------------

make_pki() {
  local pki=$DIR/pki n sans
  k8s_pki_ca "$pki"
  k8s_pki_cert "$pki" apiserver kube-apiserver "" \
    "IP:$HOST_IP,IP:$SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" server
  k8s_pki_cert "$pki" apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  k8s_pki_cert "$pki" admin vhive-admin system:masters
  k8s_pki_cert "$pki" controller-manager system:kube-controller-manager
  k8s_pki_cert "$pki" scheduler system:kube-scheduler
  k8s_pki_cert "$pki" kube-proxy system:kube-proxy
  for n in "${NODES[@]}"; do
    k8s_pki_cert "$pki" "node$n" "system:node:$(node_name "$n")" system:nodes
    sans="IP:$(node_ip "$n"),DNS:$(node_name "$n")"
    k8s_pki_cert "$pki" "node$n-kubelet" "$(node_name "$n")" "" "$sans" server
  done
  local who
  for who in admin controller-manager scheduler kube-proxy; do
    k8s_pki_kubeconfig "$DIR/$who.kubeconfig" "$API" "$pki/ca.crt" "$pki/$who.crt" "$pki/$who.key" "$who"
  done
  for n in "${NODES[@]}"; do
    k8s_pki_kubeconfig "$DIR/node$n.kubeconfig" "$API" "$pki/ca.crt" "$pki/node$n.crt" "$pki/node$n.key" "node$n"
  done
}

write_node_configs() {
  local n=$1 dir
  dir=$(node_dir "$n")
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(node_ip "$n")
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $DIR/pki/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $DIR/pki/node$n-kubelet.crt
tlsPrivateKeyFile: $DIR/pki/node$n-kubelet.key
# This host mounts cgroup v1 without systemd: the cgroupfs driver, and 1.35 runs on v1 only when
# told to. Each node's pods live under a cgroup root of its own, so two kubelets share the host.
cgroupDriver: cgroupfs
cgroupRoot: /$(node_cgroup "$n")
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$(cat "$dir/containerd.socket")
# A VM's first start (an image converted, a guest booted under TCG) takes longer than runc's.
runtimeRequestTimeout: 10m
podLogsDir: $dir/pod-logs
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
# Images are imported, never pulled: no garbage collection may take them, and no eviction
# fires on a busy development machine's disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
  nodefs.inodesFree: 1%
serializeImagePulls: false
EOF
  cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $DIR/kube-proxy.kubeconfig
hostnameOverride: $(node_name "$n")
bindAddress: $(node_ip "$n")
healthzBindAddress: $(node_ip "$n"):10256
metricsBindAddress: 127.0.0.1:10249
mode: iptables
clusterCIDR: $CLUSTER_CIDR
# The conntrack table's size is the host's, not a namespace's: leave it and its timeouts alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# --- network ------------------------------------------------------------------------------------

make_network() {
  local n ns veth m
  ip addr add "$HOST_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for n in "${NODES[@]}"; do
    ns=$(node_ns "$n")
    veth=$(node_veth "$n")
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$BRIDGE" up
    in_node "$n" ip link set lo up
    in_node "$n" ip addr add "$(node_ip "$n")/24" dev eth0
    in_node "$n" ip link set eth0 up
    # Forwarding between the node's pods and its eth0, in the node's namespace only.
    in_node "$n" sysctl -qw net.ipv4.ip_forward=1
    for m in "${NODES[@]}"; do
      [ "$m" = "$n" ] || in_node "$n" ip route add "$(node_subnet "$m")" via "$(node_ip "$m")"
    done
    ip route add "$(node_subnet "$n")" via "$(node_ip "$n")" dev "$BRIDGE"
  done
  ip route add "$SERVICE_CIDR" via "$(node_ip 1)" dev "$BRIDGE"
}

remove_network() {
  local n
  for n in "${NODES[@]}"; do
    ip netns del "$(node_ns "$n")" 2>/dev/null || true
    ip link del "$(node_veth "$n")" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true # its routes go with it
}

# --- cgroups ------------------------------------------------------------------------------------

cgroup_hierarchies() { awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo; }

# kubelet wants its cgroup root to exist in every hierarchy; cpuset's needs its CPUs and nodes.
make_cgroups() {
  local n root
  for n in "${NODES[@]}"; do
    for root in $(cgroup_hierarchies); do
      mkdir -p "$root/$(node_cgroup "$n")"
      if [ -f "$root/cpuset.cpus" ]; then
        cat "$root/cpuset.cpus" >"$root/$(node_cgroup "$n")/cpuset.cpus"
        cat "$root/cpuset.mems" >"$root/$(node_cgroup "$n")/cpuset.mems"
      fi
    done
  done
}

remove_cgroups() {
  local n root
  for n in "${NODES[@]}"; do
    for root in $(cgroup_hierarchies); do
      [ -d "$root/$(node_cgroup "$n")" ] || continue
      # Innermost first; rmdir refuses a cgroup that still has processes or children.
      find "$root/$(node_cgroup "$n")" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
}

# Paths on the host kubelet uses whatever its --root-dir (its device plugins' socket, the
# container log links): the ones the cluster found absent go at down.
KUBELET_HOST_PATHS=(/var/lib/kubelet /var/log/containers)
save_host_paths() {
  local path
  [ -f "$DIR/host-paths.absent" ] && return 0
  for path in "${KUBELET_HOST_PATHS[@]}"; do [ -e "$path" ] || echo "$path"; done >"$DIR/host-paths.absent"
}

remove_host_paths() {
  local path
  [ -n "$(other_clusters)" ] && return 0
  while read -r path; do
    [ -n "$path" ] && rm -rf "$path"
  done <"$DIR/host-paths.absent" 2>/dev/null
  return 0
}

save_sysctls() {
  local key
  [ -f "$DIR/sysctls.before" ] && return 0
  for key in "${KUBELET_SYSCTLS[@]}"; do printf '%s %s\n' "$key" "$(cat "/proc/sys/$key")"; done >"$DIR/sysctls.before"
}

restore_sysctls() {
  local key value
  [ -f "$DIR/sysctls.before" ] || return 0
  # Another cluster's kubelets still want them.
  [ -n "$(other_clusters)" ] && return 0
  while read -r key value; do echo "$value" >"/proc/sys/$key" 2>/dev/null || true; done <"$DIR/sysctls.before"
}

# Folders of other clusters whose keeper runs (their index differs from ours).
other_clusters() {
  local bridge
  for bridge in $(ip -o link show type bridge | awk -F': ' '{print $2}' | grep -E '^vk8s[0-9]$' || true); do
    [ "$bridge" = "$BRIDGE" ] || echo "$bridge"
  done
}

# --- the components -----------------------------------------------------------------------------

start_control_plane() {
  local k8s
  k8s=$(k8s_kit_dir kubernetes)
  supervise etcd "$ETCD" --name vhive --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "vhive=http://127.0.0.1:$((ETCD_PORT + 1))" &
  wait_for "etcd" 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
  local pki=$DIR/pki
  supervise kube-apiserver "$k8s/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port 6443 \
    --service-cluster-ip-range "$SERVICE_CIDR" --cert-dir "$DIR/apiserver" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction --allow-privileged=true &
  wait_for "the API server" 120 "$k8s/kubectl" --kubeconfig "$DIR/admin.kubeconfig" get --raw /readyz
  supervise kube-controller-manager "$k8s/kube-controller-manager" --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --cluster-name "vhive-k8s$INDEX" --service-cluster-ip-range "$SERVICE_CIDR" &
  supervise kube-scheduler "$k8s/kube-scheduler" --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false &
}

# This checkout's shim under the name containerd runs it by, first on every node's PATH.
write_shim_wrapper() {
  mkdir -p "$DIR/bin"
  printf '#!/bin/sh\nexec %q %q "$@"\n' "$(command -v node)" "$ROOT/dist/shim/main.js" >"$DIR/bin/containerd-shim-vhive-v2"
  chmod 755 "$DIR/bin/containerd-shim-vhive-v2"
}

# A node's containerd: private-containerd.sh run in the node's namespace, its stdin a FIFO the
# keeper holds open (it stops itself, removing all it made, once the keeper is gone).
start_node_containerd() {
  local n=$1 dir containerd
  dir=$(node_dir "$n")
  containerd=$(k8s_kit_dir containerd)
  mkfifo "$dir/containerd.stdin"
  # The script first (nsenter execs env, which execs bash: $! is its pid), its stdin the FIFO's
  # read end; then the keeper opens the write end (read-write, so that it does not wait).
  (
    close_keeper_fds
    exec nsenter "--net=$(node_netns "$n")" -- env TMPDIR="$dir" VHIVE_STATE="$dir/vhive" \
      bash "$ROOT/scripts/lib/private-containerd.sh" run --containerd "$containerd" --subnet "$(node_subnet "$n")" \
      --shim-dir "$DIR/bin" --vhive-runtime "$VHIVE_RUNTIME_CONFIG" \
      <"$dir/containerd.stdin" >"$dir/containerd.events" 2>>"$DIR/logs/node$n-containerd.log"
  ) &
  echo $! >"$DIR/pids/node$n-containerd"
  local fd
  exec {fd}<>"$dir/containerd.stdin"
  KEEPER_FDS+=" $fd"
  local tries line
  for ((tries = 0; tries < 600; tries++)); do
    line=$(grep -m1 '"event":"ready"' "$dir/containerd.events" 2>/dev/null || true)
    [ -n "$line" ] && break
    alive "$(cat "$DIR/pids/node$n-containerd")" || { tail -n 20 "$DIR/logs/node$n-containerd.log" >&2; return 1; }
    sleep 0.1
  done
  [ -n "$line" ] || { echo "node $n's containerd was not ready within 60 s" >&2; return 1; }
  node -e 'const e = JSON.parse(process.argv[1]); console.log(e.socket); console.error(e.dir)' "$line" \
    >"$dir/containerd.socket" 2>"$dir/containerd.dir"
}

start_node() {
  local n=$1 dir k8s
  dir=$(node_dir "$n")
  k8s=$(k8s_kit_dir kubernetes)
  mkdir -p "$dir/kubelet" "$dir/pod-logs" "$dir/vhive"
  start_node_containerd "$n"
  # The pause image, built here (scripts/lib/cri-images.sh), under the name containerd's sandbox
  # image setting gives.
  (. "$ROOT/scripts/lib/cri-images.sh" && cri_images_import "$(cat "$dir/containerd.socket")" "$DIR/images" pause) >&2
  write_node_configs "$n"
  supervise "node$n-kubelet" nsenter "--net=$(node_netns "$n")" -- "$k8s/kubelet" --config "$dir/kubelet.yaml" \
    --kubeconfig "$DIR/node$n.kubeconfig" --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" \
    --hostname-override "$(node_name "$n")" --node-ip "$(node_ip "$n")" --v=2 &
  supervise "node$n-kube-proxy" nsenter "--net=$(node_netns "$n")" -- "$k8s/kube-proxy" --config "$dir/kube-proxy.yaml" &
}

wait_for() { # what, seconds, command...
  local what=$1 seconds=$2 tries
  shift 2
  for ((tries = 0; tries < seconds * 2; tries++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "$what did not answer within $seconds s" >&2
  return 1
}

kubectl_admin() { "$(k8s_kit_bin kubectl)" --kubeconfig "$DIR/admin.kubeconfig" "$@"; }

nodes_ready() {
  local ready
  ready=$(kubectl_admin get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c '=True$' || true)
  [ "$ready" -eq "${#NODES[@]}" ]
}

# cluster.json: what programs (the tests, k8s-try.sh, the benchmark) need to reach the cluster.
write_cluster_json() {
  local n nodes=()
  for n in "${NODES[@]}"; do
    nodes+=("$(node -e 'const [name, ip, netns, socket, dir, vhive] = process.argv.slice(1); console.log(JSON.stringify({ name, ip, netns, containerdSocket: socket, containerdDir: dir, containerdState: dir + "/state", vhiveState: vhive }))' \
      "$(node_name "$n")" "$(node_ip "$n")" "$(node_netns "$n")" "$(cat "$(node_dir "$n")/containerd.socket")" "$(cat "$(node_dir "$n")/containerd.dir")" "$(node_dir "$n")/vhive")")
  done
  node -e 'const [dir, kubeconfig, kubectl, ctr, crictl, api, services, ...nodes] = process.argv.slice(1); console.log(JSON.stringify({ dir, kubeconfig, kubectl, ctr, crictl, apiServer: api, serviceCidr: services, nodes: nodes.map((n) => JSON.parse(n)) }, null, 2))' \
    "$DIR" "$DIR/admin.kubeconfig" "$(k8s_kit_bin kubectl)" "$(k8s_kit_bin ctr)" "$(k8s_kit_bin crictl)" "$API" "$SERVICE_CIDR" "${nodes[@]}" >"$DIR/cluster.json"
}

# --- the keeper ---------------------------------------------------------------------------------

# Stop everything in order and remove what the cluster made. Safe to run twice, and from `down`
# after a keeper that was killed.
teardown() {
  local -
  set +e +o pipefail
  load_cluster || { rm -rf "$DIR"; return 0; }
  local n component
  # Every pod through kubelet first, as a drain would: graceful stops (a function saves its
  # snapshot), CNI's teardown, kubelet's volumes unmounted.
  if alive "$(cat "$DIR/pids/kube-apiserver" 2>/dev/null)"; then
    timeout 150 "$(k8s_kit_bin kubectl)" --kubeconfig "$DIR/admin.kubeconfig" delete pods --all --all-namespaces --grace-period=30 --timeout=120s >/dev/null 2>&1
  fi
  touch "$DIR/stopping"
  # No new pods, then no kubelet to restart them, then containerd, which removes any pod left.
  for component in kube-scheduler kube-controller-manager; do stop_component "$component"; done
  for n in "${NODES[@]}"; do stop_component "node$n-kubelet"; stop_component "node$n-kube-proxy"; done
  for n in "${NODES[@]}"; do stop_node_containerd "$n"; done
  for component in kube-apiserver etcd; do stop_component "$component"; done
  # Whatever still runs a program from the folder or in a node's namespace (a killed keeper's).
  kill_leftovers
  unmount_all
  remove_cgroups
  remove_network
  restore_sysctls
  remove_host_paths
  local dir=$DIR
  rm -rf "$dir"
  say "stopped; removed $dir and its cluster's bridge, namespaces and cgroups"
}

stop_node_containerd() {
  local n=$1 pid dir
  dir=$(node_dir "$n")
  pid=$(cat "$DIR/pids/node$n-containerd" 2>/dev/null || true)
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 1200 || kill -KILL "$pid" 2>/dev/null || true
  fi
  # A private containerd whose script was killed: its own stop, from its folder.
  local env
  for env in "$dir"/vhive-containerd-*/instance.env; do
    [ -f "$env" ] || continue
    in_node "$n" env TMPDIR="$dir" bash -c '. "$1" && PRIVATE_CONTAINERD_DIR=$(dirname "$2") && private_containerd_stop' _ \
      "$ROOT/scripts/lib/private-containerd.sh" "$env" 2>/dev/null || true
  done
}

# kubelet's volume mounts (service account tokens, emptyDirs) of pods it had when it stopped.
unmount_all() {
  local round mounts mount
  for ((round = 0; round < 5; round++)); do
    # mountinfo's fifth field is the mount point (octal escapes for spaces; our paths have none).
    mounts=$(awk -v d="$DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ -n "$mounts" ] || return 0
    for mount in $mounts; do umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true; done
  done
}

kill_leftovers() {
  local proc pid n
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [ "$pid" = $$ ] && continue
    if tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF "$DIR/"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for n in "${NODES[@]}"; do
    for pid in $(ip netns pids "$(node_ns "$n")" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  sleep 0.5
}

# The keeper: starts everything (set -e: a step that fails ends it, and its EXIT trap takes
# down what was started), then waits for down.
SLEEPER=""
keep() {
  load_cluster
  trap 'kill $SLEEPER 2>/dev/null; teardown; exit 0' TERM INT
  trap 'keeper_exit' EXIT
  echo $$ >"$DIR/pids/keeper"
  say "certificates and kubeconfigs"
  make_pki
  say "network: bridge $BRIDGE ($HOST_IP), nodes $(for n in "${NODES[@]}"; do printf '%s ' "$(node_ns "$n")=$(node_ip "$n")"; done)"
  make_network
  make_cgroups
  save_sysctls
  save_host_paths
  write_shim_wrapper
  say "control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
  start_control_plane
  local n
  for n in "${NODES[@]}"; do
    say "node $(node_name "$n"): containerd 2 with vhive, kubelet, kube-proxy"
    start_node "$n"
  done
  wait_for "the nodes (Ready)" 180 nodes_ready
  write_cluster_json
  echo "ready" >"$DIR/state"
  # Until down: the supervisors run in the background; waiting keeps the traps live.
  while :; do
    sleep 3600 &
    SLEEPER=$!
    wait $SLEEPER || true
  done
}

# A start that failed keeps its logs (in a temporary folder `up` names) and removes the rest.
keeper_exit() {
  if [ "$(cat "$DIR/state" 2>/dev/null)" != ready ] && [ -d "$DIR/logs" ]; then
    local kept
    kept=$(mktemp -d /tmp/vhive-k8s-failed-XXXXXX)
    cp -r "$DIR/logs/." "$kept/"
    echo "$kept" >"$DIR/failed-logs"
    echo "failed" >"$DIR/state"
    sleep 1 # `up` reads where the logs went
  fi
  teardown
}

# --- commands -----------------------------------------------------------------------------------

cmd_up() {
  if load_cluster && alive "$(cat "$DIR/pids/keeper" 2>/dev/null)"; then
    say "the cluster in $DIR runs already"
    return 0
  fi
  [ ! -e "$DIR/cluster.env" ] || teardown # what a killed keeper left
  # down removes the whole folder: it must be the cluster's own.
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
    fail "$DIR is not empty and holds no cluster: give --dir a new or empty folder"
  fi
  local tool
  for tool in "$ETCD" openssl curl ip iptables-restore node; do
    command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup.sh"
  done
  [ -f "$ROOT/dist/shim/main.js" ] || fail "vhive is not built: run scripts/setup.sh"
  # Build the kit before anything runs (once per pinned version; minutes on a fresh machine).
  k8s_kit_build
  local index
  index=$(claim_index) || fail "no free cluster network: bridges vk8s1..9 exist or 10.221-229.0.0/16 are routed"
  (umask 077 && mkdir -p "$DIR")
  chmod 700 "$DIR"
  mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/images"
  for n in "${NODES[@]}"; do mkdir -p "$DIR/node$n"; done
  echo "INDEX=$index" >"$DIR/cluster.env"
  load_cluster
  setsid bash "$SELF" --dir "$DIR" _keep </dev/null >>"$DIR/logs/keeper.log" 2>&1 &
  local keeper=$! tries state
  trap 'kill -TERM $keeper 2>/dev/null; wait $keeper 2>/dev/null; exit 130' INT TERM
  say "starting the cluster in $DIR (log: $DIR/logs/keeper.log)"
  for ((tries = 0; tries < UP_TIMEOUT_S * 2; tries++)); do
    state=$(cat "$DIR/state" 2>/dev/null || true)
    [ "$state" = ready ] && break
    if [ "$state" = failed ] || ! alive "$keeper"; then
      local kept
      kept=$(cat "$DIR/failed-logs" 2>/dev/null || true)
      wait_gone "$keeper" 3000 || true
      [ -z "$kept" ] || tail -n 30 "$kept/keeper.log" >&2 2>/dev/null || true
      fail "the cluster did not start${kept:+ (its logs are kept in $kept)}; all it made is removed"
    fi
    sleep 0.5
  done
  if [ "$state" != ready ]; then
    kill -TERM "$keeper" 2>/dev/null || true
    wait_gone "$keeper" 3000 || true
    fail "the cluster was not ready within $UP_TIMEOUT_S s; stopped it"
  fi
  trap - INT TERM
  say "cluster ready: $(kubectl_admin get nodes --no-headers 2>/dev/null | awk '{printf "%s %s; ", $1, $2}')"
  say "eval \"\$(bash scripts/k8s-cluster.sh${DIR:+ --dir $DIR} env)\" for kubectl and crictl"
}

cmd_down() {
  load_cluster || { say "no cluster in $DIR"; return 0; }
  local keeper
  keeper=$(cat "$DIR/pids/keeper" 2>/dev/null || true)
  if alive "$keeper"; then
    kill -TERM "$keeper"
    wait_gone "$keeper" $((DOWN_TIMEOUT_S * 10)) || kill -KILL "$keeper" 2>/dev/null || true
  fi
  [ -e "$DIR" ] && teardown
  return 0
}

# Exit status 0 when the cluster runs, 3 when it does not (as an init script's status).
cmd_status() {
  load_cluster || { echo "no cluster in $DIR"; return 3; }
  local name pid
  printf 'cluster %s (index %s, API %s): %s\n' "$DIR" "$INDEX" "$API" "$(cat "$DIR/state" 2>/dev/null || echo unknown)"
  for name in keeper etcd kube-apiserver kube-controller-manager kube-scheduler $(for n in "${NODES[@]}"; do echo "node$n-containerd node$n-kubelet node$n-kube-proxy"; done); do
    pid=$(cat "$DIR/pids/$name" 2>/dev/null || true)
    if alive "$pid"; then printf '  %-24s running (pid %s)\n' "$name" "$pid"; else printf '  %-24s not running\n' "$name"; fi
  done
  kubectl_admin get nodes -o wide 2>/dev/null || true
  alive "$(cat "$DIR/pids/keeper" 2>/dev/null)" || return 3
}

cmd_env() {
  load_cluster || fail "no cluster in $DIR: run up first"
  local n
  printf 'export PATH=%q:%q:$PATH\n' "$(k8s_kit_dir kubernetes)" "$(k8s_kit_dir cri-tools)"
  printf 'export KUBECONFIG=%q\n' "$DIR/admin.kubeconfig"
  # crictl talks to node 1's containerd; VHIVE_K8S_CRI_<N> names each node's.
  printf 'export CONTAINER_RUNTIME_ENDPOINT=unix://%s\n' "$(cat "$(node_dir 1)/containerd.socket")"
  for n in "${NODES[@]}"; do printf 'export VHIVE_K8S_CRI_%s=unix://%s\n' "$n" "$(cat "$(node_dir "$n")/containerd.socket")"; done
}

cmd_import() {
  local archive=${1:-} n
  [ -f "$archive" ] || fail "import takes an image archive (FILE.tar, as vhive image export writes one)"
  load_cluster || fail "no cluster in $DIR: run up first"
  for n in "${NODES[@]}"; do
    "$(k8s_kit_bin ctr)" --address "$(cat "$(node_dir "$n")/containerd.socket")" --namespace k8s.io images import "$archive" >&2
  done
}

cmd_restart() {
  local n=${1:-} component=${2:-} pid old
  load_cluster || fail "no cluster in $DIR: run up first"
  case " ${NODES[*]} " in *" ${n#"$NODE_PREFIX"} "*) n=${n#"$NODE_PREFIX"} ;; *) fail "restart takes a node (1, 2 or ${NODE_PREFIX}N) and kubelet or containerd" ;; esac
  case "$component" in
    kubelet) old=$(cat "$DIR/pids/node$n-kubelet") ;;
    containerd) old=$(cat "$(cat "$(node_dir "$n")/containerd.dir")/containerd.pid") ;;
    *) fail "restart takes kubelet or containerd" ;;
  esac
  kill -KILL "$old"
  local tries
  for ((tries = 0; tries < 600; tries++)); do
    case "$component" in
      kubelet) pid=$(cat "$DIR/pids/node$n-kubelet") ;;
      containerd) pid=$(cat "$(cat "$(node_dir "$n")/containerd.dir")/containerd.pid") ;;
    esac
    if [ "$pid" != "$old" ] && alive "$pid"; then
      echo "$pid"
      return 0
    fi
    sleep 0.1
  done
  fail "node $n's $component did not come back within 60 s"
}

case "$COMMAND" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  import) cmd_import "$@" ;;
  restart) cmd_restart "$@" ;;
  _keep) keep ;;
  *) echo "usage: bash scripts/k8s-cluster.sh [--dir DIR] up|down|status|env|import FILE.tar|restart NODE kubelet|containerd" >&2; exit 2 ;;
esac
