# shellcheck shell=bash
# The container images the CRI tests use, built offline from Debian's files and imported into a
# containerd under the exact names containerd's CRI integration suite asks for
# (integration/common.go), so its "pull if missing" finds them present and nothing is pulled:
#
#   pause               registry.k8s.io/pause:3.6          /pause (native/pause), the sandbox image
#   busybox             ghcr.io/containerd/busybox:1.28     busybox-static with its applets, and the
#                                                           /etc/passwd and /etc/group of the
#                                                           busybox image (root in wheel: the
#                                                           suite's TestAdditionalGids reads them)
#   resource-consumer   registry.k8s.io/e2e-test-images/resource-consumer:1.10
#                                                           busybox plus Debian's stress and its
#                                                           libraries; runs until SIGTERM
#   volume-copy-up      ghcr.io/containerd/volume-copy-up:2.1     busybox plus a VOLUME /test_dir
#                                                                 holding test_file
#   volume-ownership    ghcr.io/containerd/volume-ownership:2.1   busybox plus a VOLUME /test_dir
#                                                                 owned by nobody:nogroup
#
# (The suite also names ghcr.io/containerd/alpine:3.14.0, but no test of containerd 1.6 uses it.)
#
# And those of cri-tools' critest (scripts/critest.sh), after cri-tools' images/build, under the
# names its tests pull (pkg/validate/consts.go, pkg/framework/util.go), each busybox plus:
#
#   critest-busybox          registry.k8s.io/e2e-test-images/busybox:1.29-2   nothing (the default test image)
#   critest-nginx            registry.k8s.io/e2e-test-images/nginx:1.14-2     busybox's httpd on port 80
#   critest-httpd            registry.k8s.io/e2e-test-images/httpd:2.4.39-4   the same (the multi-container tests')
#   critest-hostnet-nginx    gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64   the same on 12003
#   critest-user-*           .../test-image-user-uid (USER 1002), -user-username (www-data),
#                            -user-uid-group (1003:1004), -user-username-group (www-data:1004)
#   critest-predefined-group .../test-image-predefined-group: user 1000 in group 50000
#   critest-image-*          .../test-image-1, -2, -3, -latest, -tag:test and :all (one image),
#                            -tags:1, :2, :3 (one image): an empty file named after the image
#
# critest's test-image-digest@sha256:9700f9a2... names one exact upstream digest, which no image
# built here can have: its tests fail for every runtime.
# Each is an OCI image archive (oci-layout, index.json annotated io.containerd.image.name with
# the reference, blobs/sha256/...), the format `ctr images import` names images from. Derived
# images share busybox's layer. Archives are cached under CACHE/<key>/, key being a digest of
# this script and every file copied in, so a new busybox or pause rebuilds them.
#
# As a library:  . scripts/lib/cri-images.sh; cri_images_import SOCKET CACHE [NAME...]
# As a command:  bash scripts/lib/cri-images.sh import --address SOCKET --cache DIR [NAME...]
#                bash scripts/lib/cri-images.sh build --cache DIR [NAME...]
# Without NAMEs: all five. Importing again is harmless (same digests).

_CRI_IMAGES_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
_CRI_IMAGES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CRI_IMAGE_NAMES=(pause busybox resource-consumer volume-copy-up volume-ownership)
_CRI_CRITEST_REGISTRY=gcr.io/k8s-staging-cri-tools
declare -A CRI_IMAGE_REFS=(
  [pause]=registry.k8s.io/pause:3.6
  [busybox]=ghcr.io/containerd/busybox:1.28
  [resource-consumer]=registry.k8s.io/e2e-test-images/resource-consumer:1.10
  [volume-copy-up]=ghcr.io/containerd/volume-copy-up:2.1
  [volume-ownership]=ghcr.io/containerd/volume-ownership:2.1
  [critest-busybox]=registry.k8s.io/e2e-test-images/busybox:1.29-2
  [critest-nginx]=registry.k8s.io/e2e-test-images/nginx:1.14-2
  [critest-httpd]=registry.k8s.io/e2e-test-images/httpd:2.4.39-4
  [critest-hostnet-nginx]=$_CRI_CRITEST_REGISTRY/hostnet-nginx-amd64:latest
  [critest-user-uid]=$_CRI_CRITEST_REGISTRY/test-image-user-uid:latest
  [critest-user-username]=$_CRI_CRITEST_REGISTRY/test-image-user-username:latest
  [critest-user-uid-group]=$_CRI_CRITEST_REGISTRY/test-image-user-uid-group:latest
  [critest-user-username-group]=$_CRI_CRITEST_REGISTRY/test-image-user-username-group:latest
  [critest-predefined-group]=$_CRI_CRITEST_REGISTRY/test-image-predefined-group:latest
  [critest-image-1]=$_CRI_CRITEST_REGISTRY/test-image-1:latest
  [critest-image-2]=$_CRI_CRITEST_REGISTRY/test-image-2:latest
  [critest-image-3]=$_CRI_CRITEST_REGISTRY/test-image-3:latest
  [critest-image-latest]=$_CRI_CRITEST_REGISTRY/test-image-latest:latest
  [critest-image-tag-test]=$_CRI_CRITEST_REGISTRY/test-image-tag:test
  [critest-image-tag-all]=$_CRI_CRITEST_REGISTRY/test-image-tag:all
  [critest-image-tags-1]=$_CRI_CRITEST_REGISTRY/test-image-tags:1
  [critest-image-tags-2]=$_CRI_CRITEST_REGISTRY/test-image-tags:2
  [critest-image-tags-3]=$_CRI_CRITEST_REGISTRY/test-image-tags:3
)
CRI_CRITEST_IMAGE_NAMES=(critest-busybox critest-nginx critest-httpd critest-hostnet-nginx critest-user-uid critest-user-username
  critest-user-uid-group critest-user-username-group critest-predefined-group critest-image-1 critest-image-2
  critest-image-3 critest-image-latest critest-image-tag-test critest-image-tag-all critest-image-tags-1
  critest-image-tags-2 critest-image-tags-3)
_CRI_BUSYBOX=/bin/busybox
_CRI_PAUSE=$_CRI_IMAGES_ROOT/native/build/vhive-pause
_CRI_STRESS=/usr/bin/stress
_CRI_PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_cri_say() { printf 'cri-images: %s\n' "$*" >&2; }

_cri_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# The files an image is made of: the cache key covers them. stress's shared libraries too.
_cri_inputs() {
  local lib
  printf '%s\n' "$_CRI_IMAGES_SCRIPT" "$_CRI_BUSYBOX" "$_CRI_PAUSE" "$_CRI_STRESS"
  for lib in $(_cri_stress_libs); do printf '%s\n' "$lib"; done
}

# The shared objects stress loads, and its ELF interpreter, as absolute paths.
_cri_stress_libs() {
  ldd "$_CRI_STRESS" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
}

_cri_cache_key() {
  local file
  for file in $(_cri_inputs); do _cri_sha256 "$file"; done | sha256sum | cut -c1-16
}

# A layer from a directory: a gzip tar with the files' own owners and modes, in name order with
# fixed times so the same tree gives the same digest. Prints "<digest> <diff_id> <size>".
_cri_layer() {
  local tree=$1 blobs=$2 tmp digest diff_id
  tmp=$(mktemp -d "$blobs/../layer-XXXXXX")
  tar --create --file "$tmp/layer.tar" --directory "$tree" --sort=name --numeric-owner --mtime=@0 --format=gnu .
  diff_id=$(_cri_sha256 "$tmp/layer.tar")
  gzip -n -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
  digest=$(_cri_sha256 "$tmp/layer.tar.gz")
  mv "$tmp/layer.tar.gz" "$blobs/$digest"
  rm -rf "$tmp"
  printf '%s %s %s\n' "$digest" "$diff_id" "$(stat -c %s "$blobs/$digest")"
}

# A blob from a string; prints "<digest> <size>".
_cri_blob() {
  local blobs=$1 text=$2 tmp digest
  tmp=$(mktemp "$blobs/../blob-XXXXXX")
  printf '%s' "$text" >"$tmp"
  digest=$(_cri_sha256 "$tmp")
  mv "$tmp" "$blobs/$digest"
  printf '%s %s\n' "$digest" "$(stat -c %s "$blobs/$digest")"
}

# _cri_archive OUT REF CONFIG_JSON LAYER...: an OCI image archive of the layers (each "<digest>
# <diff_id> <size>", bottom first, their blobs already in WORK/layout/blobs/sha256).
_cri_archive() {
  local out=$1 ref=$2 container_config=$3 work
  shift 3
  work=$(dirname "$out")/layout
  local blobs=$work/blobs/sha256 diff_ids="" layers="" layer digest diff_id size sep=""
  for layer in "$@"; do
    read -r digest diff_id size <<<"$layer"
    diff_ids+="$sep\"sha256:$diff_id\""
    layers+="$sep{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$digest\",\"size\":$size}"
    sep=,
  done
  local config manifest config_digest config_size manifest_digest manifest_size
  config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":$container_config,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_ids]}}"
  read -r config_digest config_size <<<"$(_cri_blob "$blobs" "$config")"
  manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":$config_size},\"layers\":[$layers]}"
  read -r manifest_digest manifest_size <<<"$(_cri_blob "$blobs" "$manifest")"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$ref" "${ref##*:}" >"$work/index.json"
  # Only this image's blobs: the layout directory is shared by the images of one build.
  local names=(oci-layout index.json "blobs/sha256/$config_digest" "blobs/sha256/$manifest_digest")
  for layer in "$@"; do names+=("blobs/sha256/${layer%% *}"); done
  tar --create --file "$out.tmp" --directory "$work" --numeric-owner --owner=0 --group=0 --mtime=@0 "${names[@]}"
  mv "$out.tmp" "$out"
}

_cri_busybox_tree() {
  local tree=$1 applet
  mkdir -p "$tree"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,home,var/www,root,tmp}
  chmod 1777 "$tree/tmp"
  chmod 700 "$tree/root"
  cp "$_CRI_BUSYBOX" "$tree/bin/busybox"
  for applet in $("$_CRI_BUSYBOX" --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$tree/$applet"
  done
  # The accounts of the busybox image (buildroot's skeleton): the suite expects root to be in
  # wheel (10), daemon to be uid and gid 1, and nobody and nogroup to be 65534.
  cat >"$tree/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat >"$tree/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
EOF
}

# Build the archives of the images named (all by default) into CACHE/<key>/; prints that dir.
cri_images_build() {
  local cache=$1
  shift
  local names=("$@") name
  [ ${#names[@]} -gt 0 ] || names=("${CRI_IMAGE_NAMES[@]}")
  local file
  for file in "$_CRI_BUSYBOX" "$_CRI_PAUSE" "$_CRI_STRESS"; do
    [ -x "$file" ] || { _cri_say "$file is missing: run scripts/setup.sh (busybox-static, stress, make -C native)"; return 1; }
  done
  local key dir
  key=$(_cri_cache_key)
  dir=$cache/$key
  local missing=()
  for name in "${names[@]}"; do
    [ -n "${CRI_IMAGE_REFS[$name]:-}" ] || { _cri_say "unknown image $name (known: ${CRI_IMAGE_NAMES[*]})"; return 1; }
    [ -f "$dir/$name.tar" ] || missing+=("$name")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    mkdir -p "$cache"
    # Archives of other keys were built from older inputs.
    find "$cache" -mindepth 1 -maxdepth 1 ! -name "$key" -exec rm -rf {} +
    mkdir -p "$dir"
    local work
    work=$(mktemp -d "$dir/build-XXXXXX")
    (_cri_build_in "$work" "$dir" "${missing[@]}")
    local built=$?
    rm -rf "$work"
    [ $built -eq 0 ] || return 1
  fi
  printf '%s\n' "$dir"
}

_cri_build_in() {
  set -euo pipefail
  local work=$1 dir=$2 name
  shift 2
  local blobs=$work/layout/blobs/sha256
  mkdir -p "$blobs"
  local busybox_layer="" layer
  _cri_busybox_layer() {
    if [ -z "$busybox_layer" ]; then
      _cri_busybox_tree "$work/busybox"
      busybox_layer=$(_cri_layer "$work/busybox" "$blobs")
    fi
  }
  for name in "$@"; do
    _cri_say "building ${CRI_IMAGE_REFS[$name]}"
    case "$name" in
      pause)
        mkdir -p "$work/pause"
        cp "$_CRI_PAUSE" "$work/pause/pause"
        layer=$(_cri_layer "$work/pause" "$blobs")
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" \
          "{\"User\":\"65535:65535\",\"Env\":[\"$_CRI_PATH_ENV\"],\"Entrypoint\":[\"/pause\"],\"WorkingDir\":\"/\"}" "$layer"
        ;;
      busybox)
        _cri_busybox_layer
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" "{\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\"]}" "$busybox_layer"
        ;;
      resource-consumer)
        _cri_busybox_layer
        local lib
        mkdir -p "$work/stress/usr/bin"
        cp "$_CRI_STRESS" "$work/stress/usr/bin/stress"
        for lib in $(_cri_stress_libs); do
          mkdir -p "$work/stress$(dirname "$lib")"
          cp -L "$lib" "$work/stress$lib"
        done
        layer=$(_cri_layer "$work/stress" "$blobs")
        # Runs until SIGTERM, which it honours at once (as PID 1 a signal without a handler
        # would be ignored, and every StopContainer would wait for its timeout).
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" \
          "{\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\",\"-c\",\"trap 'exit 0' TERM INT; while :; do sleep 1 \\u0026 wait \$!; done\"]}" \
          "$busybox_layer" "$layer"
        ;;
      volume-copy-up)
        _cri_busybox_layer
        mkdir -p "$work/copy-up/test_dir"
        echo test_content >"$work/copy-up/test_dir/test_file"
        layer=$(_cri_layer "$work/copy-up" "$blobs")
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" \
          "{\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\"],\"Volumes\":{\"/test_dir\":{}}}" "$busybox_layer" "$layer"
        ;;
      volume-ownership)
        _cri_busybox_layer
        mkdir -p "$work/ownership/test_dir"
        chown 65534:65534 "$work/ownership/test_dir"
        layer=$(_cri_layer "$work/ownership" "$blobs")
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" \
          "{\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\"],\"Volumes\":{\"/test_dir\":{}}}" "$busybox_layer" "$layer"
        ;;
      critest-busybox)
        _cri_busybox_layer
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" "{\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\"]}" "$busybox_layer"
        ;;
      critest-nginx | critest-httpd | critest-hostnet-nginx)
        _cri_busybox_layer
        local port=80
        [ "$name" != critest-hostnet-nginx ] || port=12003
        mkdir -p "$work/$name/usr/share/nginx/html"
        printf '<h1>Welcome to nginx!</h1>\n' >"$work/$name/usr/share/nginx/html/index.html"
        layer=$(_cri_layer "$work/$name" "$blobs")
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" \
          "{\"Env\":[\"$_CRI_PATH_ENV\"],\"ExposedPorts\":{\"$port/tcp\":{}},\"Cmd\":[\"httpd\",\"-f\",\"-p\",\"$port\",\"-h\",\"/usr/share/nginx/html\"]}" "$busybox_layer" "$layer"
        ;;
      critest-user-*)
        _cri_busybox_layer
        local user
        case "$name" in
          critest-user-uid) user=1002 ;;
          critest-user-username) user=www-data ;;
          critest-user-uid-group) user=1003:1004 ;;
          critest-user-username-group) user=www-data:1004 ;;
        esac
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" "{\"User\":\"$user\",\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\"]}" "$busybox_layer"
        ;;
      critest-predefined-group)
        _cri_busybox_layer
        mkdir -p "$work/$name/etc" "$work/$name/home/default-user"
        cp "$work/busybox/etc/passwd" "$work/busybox/etc/group" "$work/$name/etc/"
        echo "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh" >>"$work/$name/etc/passwd"
        printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >>"$work/$name/etc/group"
        chown 1000:1000 "$work/$name/home/default-user"
        layer=$(_cri_layer "$work/$name" "$blobs")
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" "{\"User\":\"1000\",\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\"]}" "$busybox_layer" "$layer"
        ;;
      critest-image-*)
        _cri_busybox_layer
        # Dockerfile: ADD ${TEST} ${TEST}; the tags of one image share its TEST.
        local test=${CRI_IMAGE_REFS[$name]##*/}
        test=${test%%:*}
        case "$name" in critest-image-tags-*) test=same-image ;; esac
        mkdir -p "$work/$name"
        : >"$work/$name/$test"
        layer=$(_cri_layer "$work/$name" "$blobs")
        _cri_archive "$work/$name.tar" "${CRI_IMAGE_REFS[$name]}" "{\"Env\":[\"$_CRI_PATH_ENV\"],\"Cmd\":[\"sh\"]}" "$busybox_layer" "$layer"
        ;;
    esac
    mv "$work/$name.tar" "$dir/$name.tar"
  done
}

# Import the images named (all by default) into the containerd at SOCKET, in the namespace
# the CRI plugin uses (k8s.io), unpacked for its snapshotter.
cri_images_import() {
  local socket=$1 cache=$2
  shift 2
  local dir name
  dir=$(cri_images_build "$cache" "$@") || return 1
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=("${CRI_IMAGE_NAMES[@]}")
  for name in "${names[@]}"; do
    timeout 120 ctr --address "$socket" --namespace k8s.io images import "$dir/$name.tar" >/dev/null ||
      { _cri_say "ctr could not import $dir/$name.tar into $socket"; return 1; }
  done
  _cri_say "imported ${names[*]} into $socket"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  command=${1:-}
  shift || true
  address="" cache=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --address) address=$2; shift 2 ;;
      --cache) cache=$2; shift 2 ;;
      --*) echo "unknown option $1" >&2; exit 2 ;;
      *) break ;;
    esac
  done
  case "$command" in
    import)
      [ -n "$address" ] && [ -n "$cache" ] || { echo "usage: bash $0 import --address SOCKET --cache DIR [NAME...]" >&2; exit 2; }
      cri_images_import "$address" "$cache" "$@"
      ;;
    build)
      [ -n "$cache" ] || { echo "usage: bash $0 build --cache DIR [NAME...]" >&2; exit 2; }
      cri_images_build "$cache" "$@"
      ;;
    *) echo "usage: bash $0 import --address SOCKET --cache DIR [NAME...] | build --cache DIR [NAME...]" >&2; exit 2 ;;
  esac
fi
