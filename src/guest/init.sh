#!/bin/busybox sh
# vhive guest init: PID 1 of every function microVM, run from the initramfs.
#
# It loads the virtio modules, brings up the network QEMU's user networking expects, mounts the
# function's root filesystem (/dev/vda, ext4) read-only under a tmpfs overlay, and runs the
# image's entrypoint (/.vhive/run, written into the image by vhive) chrooted there. It stays
# PID 1 so that it can report how the entrypoint ended before it powers the VM off. Before the
# entrypoint it starts the guest agent (/bin/vhive-agent), which reseeds the kernel's CRNG with
# host entropy after every restore and runs the function's after-restore hooks; a function
# registers one on /run/vhive/restore.sock inside its root.
#
# The host reads these lines on the serial console (src/vm/serial.ts parses them):
#   vhive-init: start               init began (kernel boot is over)
#   vhive-init: probe-ok            accelerator probe boot reached init (vhive.probe=1)
#   vhive-init: exec                the entrypoint is being started
#   vhive-init: exit <status>       the entrypoint exited with <status>
#   vhive-init: error <message>     set-up failed; the VM powers off
/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>/dev/console

say() { echo "vhive-init: $*"; }
fail() {
  say "error $*"
  poweroff -f
}

say start
if grep -qw vhive.probe=1 /proc/cmdline; then
  say probe-ok
  poweroff -f
fi

# Order matters: each module needs the ones before it.
for module in virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net virtio_console overlay; do
  insmod "/lib/modules/$module.ko" || fail "cannot load kernel module $module"
done

# QEMU user networking (slirp): the guest is 10.0.2.15, the gateway 10.0.2.2.
ip link set lo up || fail "cannot bring up lo"
ip link set eth0 up || fail "no network device eth0 (virtio-net missing?)"
ip addr add 10.0.2.15/24 dev eth0 || fail "cannot set the address of eth0"
ip route add default via 10.0.2.2 || fail "cannot set the default route"
hostname vhive

# The root disk may take a moment to appear after virtio_blk loads.
tries=0
while [ ! -b /dev/vda ]; do
  tries=$((tries + 1))
  [ "$tries" -gt 100 ] && fail "no root disk /dev/vda"
  usleep 10000
done
mkdir -p /mnt/lower /mnt/rw /newroot
mount -t ext4 -o ro /dev/vda /mnt/lower || fail "cannot mount the function image /dev/vda (ext4)"
[ -f /mnt/lower/.vhive/run ] || fail "the function image has no /.vhive/run (not built by vhive?)"
mount -t tmpfs -o mode=0755 tmpfs /mnt/rw || fail "cannot mount the tmpfs overlay"
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot \
  || fail "cannot mount the overlay root"
for dir in proc sys dev tmp; do mkdir -p "/newroot/$dir"; done
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
# The entrypoint script runs under this busybox, so images without a shell work too, and
# switches user with the agent (a container's OCI spec may name one).
cp /bin/busybox /newroot/.vhive/busybox
cp /bin/vhive-agent /newroot/.vhive/vhive-agent
mkdir -p /newroot/run/vhive
/bin/vhive-agent --port vhive.agent --hooks /newroot/run/vhive/restore.sock || fail "cannot start the guest agent"

say exec
chroot /newroot /.vhive/busybox sh /.vhive/run &
wait $!
say "exit $?"
poweroff -f
