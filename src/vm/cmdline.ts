/**
 * The QEMU command line of a function microVM. Pure: a VmSpec in, argv out, so tests can check
 * it and later snapshot fingerprints can be derived from the same options.
 *
 * Channels: QMP on stdio (fd 0/1), the serial console on fd 3 (a socketpair the parent reads), QEMU's
 * own diagnostics on stderr. The VM starts paused (-S) so that "QEMU up" and "kernel boot" are
 * measured apart, and -no-reboot turns a guest reboot or panic into a QEMU exit.
 */

export type Accel = "kvm" | "tcg";

export interface PortForward {
  /** Loopback port on the host. */
  hostPort: number;
  /** TCP port the function listens on inside the guest. */
  guestPort: number;
}

export interface VmSpec {
  qemuPath: string;
  accel: Accel;
  kernelPath: string;
  initramfsPath: string;
  /** The function's ext4 root filesystem; omitted for a probe boot. */
  rootfsPath?: string;
  memMib: number;
  vcpus: number;
  /** Host TSC rate; needed under TCG, where the guest cannot calibrate its TSC on microvm. */
  tscKhz: number;
  forward?: PortForward;
  /** Extra words for the guest kernel's command line. */
  kernelArgs?: readonly string[];
}

/** The fd of the child on which QEMU writes the serial console. */
export const SERIAL_FD = 3;

export function kernelCommandLine(spec: Pick<VmSpec, "accel" | "tscKhz" | "kernelArgs">): string {
  const words = ["console=ttyS0", "reboot=t", "panic=-1", "quiet", "pci=off"];
  if (spec.accel === "tcg") {
    // lpj = loops per jiffy at the TSC rate and the guest's HZ=250; skips delay calibration.
    words.push(`tsc_early_khz=${spec.tscKhz}`, `lpj=${spec.tscKhz * 4}`);
  }
  words.push(...(spec.kernelArgs ?? []));
  return words.join(" ");
}

/** QEMU option values escape a comma by doubling it. */
function escapeOption(value: string): string {
  return value.replaceAll(",", ",,");
}

export function qemuArgs(spec: VmSpec): string[] {
  const args = [
    "-M", "microvm",
    "-accel", spec.accel,
    // KVM passes the host CPU through; TCG offers every feature it emulates (AVX2 in 7.2), which
    // numeric libraries in the functions expect.
    "-cpu", spec.accel === "kvm" ? "host" : "max",
    "-m", `${spec.memMib}M`,
    "-smp", String(spec.vcpus),
    "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-S",
    "-kernel", spec.kernelPath,
    "-initrd", spec.initramfsPath,
    "-append", kernelCommandLine(spec),
    "-chardev", `socket,id=serial0,fd=${SERIAL_FD}`,
    "-serial", "chardev:serial0",
    "-chardev", "stdio,id=qmp0,signal=off",
    "-mon", "chardev=qmp0,mode=control",
  ];
  if (spec.rootfsPath !== undefined) {
    args.push(
      "-drive", `id=rootfs,file=${escapeOption(spec.rootfsPath)},format=raw,if=none,readonly=on`,
      "-device", "virtio-blk-device,drive=rootfs",
    );
  }
  if (spec.forward !== undefined) {
    // restrict=on: the guest reaches neither the host nor any network; only the forward gets in.
    const { hostPort, guestPort } = spec.forward;
    args.push(
      "-netdev", `user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:${hostPort}-:${guestPort}`,
      "-device", "virtio-net-device,netdev=net0",
    );
  }
  return args;
}
