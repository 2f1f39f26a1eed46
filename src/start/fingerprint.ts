/** The fingerprint a VM of this host would have for an image: what a snapshot must match. */
import type { StoredImage } from "../image/index.js";
import type { Fingerprint } from "../snapshot/index.js";
import { deviceSignature, machineOf } from "../vm/index.js";
import type { Host } from "./host.js";

export function fingerprintFor(host: Host, image: StoredImage, size: { memMib: number; vcpus: number }): Fingerprint {
  return {
    qemu: host.qemu.versionLine,
    ...machineOf(host.accel),
    accel: host.accel,
    memMib: size.memMib,
    vcpus: size.vcpus,
    kernelDigest: host.guest.kernel.digest,
    initramfsDigest: host.guest.initramfs.digest,
    imageDigest: image.rootfsDigest,
    devices: deviceSignature({ rootfsPath: image.rootfsPath, forward: { hostPort: 0, guestPort: image.config.port } }),
  };
}
