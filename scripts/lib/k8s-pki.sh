# shellcheck shell=bash
# Certificates and kubeconfigs of a private Kubernetes cluster (scripts/k8s-cluster.sh), made
# with openssl as kubeadm would lay them out: one CA, the API server's serving certificate, a
# client certificate per component with the user and groups its default RBAC bindings name
# (system:kube-controller-manager, system:kube-scheduler, system:kube-proxy, system:node:NAME in
# system:nodes, an admin in system:masters), each kubelet's serving certificate, and the service
# account signing key. Keys are EC P-256; everything is 0600 under a 0700 folder.
#
#   . scripts/lib/k8s-pki.sh
#   k8s_pki_ca DIR
#   k8s_pki_cert DIR NAME CN [O] [SANS] [USAGE]   # DIR/NAME.crt, DIR/NAME.key
#   k8s_pki_kubeconfig FILE SERVER CA CERT KEY USER

_k8s_pki_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

k8s_pki_ca() {
  local dir=$1
  (umask 077 && mkdir -p "$dir")
  (
    umask 077
    _k8s_pki_key "$dir/ca.key" &&
      openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=vhive-k8s-ca" -days 3650 -out "$dir/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null &&
      # The service account tokens' signing key pair.
      _k8s_pki_key "$dir/sa.key" && openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  )
}

# USAGE: client (default), server, or both.
k8s_pki_cert() {
  local dir=$1 name=$2 cn=$3 org=${4:-} sans=${5:-} usage=${6:-client} subject ext
  subject="/CN=$cn"
  [ -z "$org" ] || subject="/O=$org$subject"
  case "$usage" in
    client) ext="extendedKeyUsage=clientAuth" ;;
    server) ext="extendedKeyUsage=serverAuth" ;;
    both) ext="extendedKeyUsage=serverAuth,clientAuth" ;;
  esac
  ext+=$'\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE'
  [ -z "$sans" ] || ext+=$'\n'"subjectAltName=$sans"
  (
    umask 077
    _k8s_pki_key "$dir/$name.key" &&
      openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr" 2>/dev/null &&
      openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 3650 -extfile <(printf '%s\n' "$ext") -out "$dir/$name.crt" 2>/dev/null &&
      rm -f "$dir/$name.csr"
  )
}

k8s_pki_kubeconfig() {
  local file=$1 server=$2 ca=$3 cert=$4 key=$5 user=$6
  (
    umask 077
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: vhive
    cluster:
      server: $server
      certificate-authority: $ca
users:
  - name: $user
    user:
      client-certificate: $cert
      client-key: $key
contexts:
  - name: vhive
    context:
      cluster: vhive
      user: $user
current-context: vhive
EOF
  )
}
