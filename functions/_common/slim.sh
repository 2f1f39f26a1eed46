#!/bin/sh
# The last build step of images whose packages drag in much that the function never runs:
# purges it from the image's root (run in its chroot), ignoring the dependencies that point at
# it. mmdebstrap cannot leave out a hard dependency; the image is read-only once built and apt
# never runs in it again, so the broken dependencies harm nothing.
#
# BUILD_ONLY: Debian 12's python3-scipy (so python3-sklearn) depends on python3-pythran, a
# Python-to-C++ compiler, which depends on gcc, g++, the Python, libc and OpenBLAS headers and
# the boost headers: about 600 MB.
# NEVER_LOADED: python3-torch and python3-opencv link Qt, which links libGL; Mesa's DRI drivers
# (and LLVM and Z3 under them) are only dlopen()ed when a program opens a GL context, which no
# function does; libtorch-test holds PyTorch's C++ test programs. About 200 MB.
#
# Reusable in any recipe whose image is large (see the README's Function suite): copy it in and
# make it the last build step, naming any packages of your own to purge as arguments:
#   "files": [..., { "src": "<path to vhive>/functions/_common/slim.sh", "dest": "/tmp/slim.sh" }]
#   "build": [..., "sh /tmp/slim.sh && rm /tmp/slim.sh"]          or "sh /tmp/slim.sh libfoo-dev && ..."
# Packages that are not installed are skipped.
set -eu

BUILD_ONLY="
  python3-pythran python3-beniget python3-gast python3-ply libboost-dev libboost1.74-dev libxsimd-dev
  gcc gcc-12 g++ g++-12 cpp cpp-12 libgcc-12-dev libstdc++-12-dev libcc1-0 libisl23 libmpc3 libmpfr6
  libasan8 libtsan2 liblsan0 libubsan1 libitm1
  binutils binutils-common binutils-x86-64-linux-gnu libbinutils libctf0 libctf-nobfd0 libgprofng0 libjansson4
  libc6-dev libc-dev-bin linux-libc-dev libcrypt-dev libnsl-dev libtirpc-dev rpcsvc-proto
  python3-dev python3.11-dev libpython3-dev libpython3.11-dev python3-all python3-all-dev libpython3-all-dev
  zlib1g-dev libexpat1-dev libopenblas-dev libopenblas-pthread-dev
  perl perl-modules-5.36 libperl5.36 libgdbm-compat4 libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl
  libjs-jquery libjs-underscore libjs-sphinxdoc
"
NEVER_LOADED="libgl1-mesa-dri libllvm15 libz3-4 libtorch-test"

installed=""
for package in $BUILD_ONLY $NEVER_LOADED "$@"; do
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    installed="$installed $package"
  fi
done
if [ -n "$installed" ]; then
  before=$(du -sxm / | cut -f1)
  # shellcheck disable=SC2086 # word splitting is the point
  dpkg --purge --force-depends $installed >/dev/null
  echo "slim: purged$installed ($((before - $(du -sxm / | cut -f1))) MB)"
fi
