/**
 * The QEMU command line of a function microVM. Pure: a VmSpec in, argv out, so tests can check
 * it and later snapshot fingerprints can be derived from the same options.
 *
 * Channels: QMP on stdio (fd 0/1), the serial console on fd 3 (a socketpair the parent reads), QEMU's
 * own diagnostics on stderr, a restore's incoming device state on fd 4, and the guest agent's
 * virtio-serial port on fd 5 (function VMs: how a restore hands the guest fresh entropy). The VM starts paused (-S) so that "QEMU up" and "kernel boot" are
 * measured apart, and -no-reboot turns a guest reboot or panic into a QEMU exit.
 */

export type Accel = "kvm" | "tcg";

export interface PortForward {
  /** Port on the host side (in the network namespace QEMU runs in). */
  hostPort: number;
  /** Address it listens on: 127.0.0.1 (the default), or 0.0.0.0 for every address of the namespace. */
  hostAddress?: string;
  /** TCP port the function listens on inside the guest. */
  guestPort: number;
}

/** Boot a kernel; absent when restoring, where the kernel is already in the snapshot's memory. */
export interface GuestBoot {
  kernelPath: string;
  initramfsPath: string;
  /** Extra words for the guest kernel's command line. */
  kernelArgs?: readonly string[];
}

/**
 * Guest RAM backed by a file. share=true writes the guest's memory through to the file (a
 * snapshot being made); share=false maps it privately, pages read lazily on first touch and
 * copied on write (a restore: the file itself is never written).
 */
export interface GuestMemoryFile {
  path: string;
  share: boolean;
}

export interface VmSpec {
  qemuPath: string;
  accel: Accel;
  memMib: number;
  vcpus: number;
  /** Host TSC rate; needed under TCG, where the guest cannot calibrate its TSC on microvm. */
  tscKhz: number;
  boot?: GuestBoot;
  /** Anonymous memory when absent. */
  memoryFile?: GuestMemoryFile;
  /** Wait for a migration stream (`-incoming defer`) instead of running from reset. */
  incoming?: boolean;
  /** The function's ext4 root filesystem; omitted for a probe boot. */
  rootfsPath?: string;
  forward?: PortForward;
}

/** The machine type and the CPU model for an accelerator; part of a snapshot's fingerprint. */
export function machineOf(accel: Accel): { machine: string; cpu: string } {
  // KVM passes the host CPU through; TCG offers every feature it emulates (AVX2 in 7.2), which
  // numeric libraries in the functions expect.
  return { machine: "microvm", cpu: accel === "kvm" ? "host" : "max" };
}

/**
 * The guest-visible devices, without per-instance details (the host port): a restore must
 * present exactly the devices the snapshot was made with.
 */
export function deviceSignature(spec: Pick<VmSpec, "rootfsPath" | "forward">): string {
  return ["serial:isa", ...optionalDevices(spec).map((device) => device.signature)].join(",");
}

/**
 * The devices a spec may or may not have, each with its QEMU arguments and its token in the
 * signature: one list, so a device cannot be added to the command line and not to the signature.
 */
function optionalDevices(spec: Pick<VmSpec, "rootfsPath" | "forward">): { signature: string; args: string[] }[] {
  const devices: { signature: string; args: string[] }[] = [];
  if (spec.rootfsPath !== undefined) {
    devices.push({
      signature: "virtio-blk:rootfs:ro",
      args: ["-drive", `id=rootfs,file=${escapeOption(spec.rootfsPath)},format=raw,if=none,readonly=on`, "-device", "virtio-blk-device,drive=rootfs"],
    });
  }
  if (spec.forward !== undefined) {
    // restrict=on: the guest reaches neither the host nor any network; only the forward gets in.
    const { hostPort, guestPort, hostAddress = "127.0.0.1" } = spec.forward;
    // slirp takes an empty address for "every address".
    const address = hostAddress === "0.0.0.0" ? "" : hostAddress;
    devices.push({
      signature: `virtio-net:user:restrict:guest-port=${guestPort}`,
      args: ["-netdev", `user,id=net0,restrict=on,hostfwd=tcp:${address}:${hostPort}-:${guestPort}`, "-device", "virtio-net-device,netdev=net0"],
    });
  }
  if (hasAgent(spec)) {
    devices.push({
      signature: `virtio-serial:${AGENT_PORT_NAME}`,
      args: ["-device", "virtio-serial-device", "-chardev", `socket,id=agent0,fd=${AGENT_FD}`, "-device", `virtserialport,chardev=agent0,name=${AGENT_PORT_NAME}`],
    });
  }
  return devices;
}

/** Function VMs (those with a root filesystem) run the guest agent; the probe boot does not. */
export function hasAgent(spec: Pick<VmSpec, "rootfsPath">): boolean {
  return spec.rootfsPath !== undefined;
}

/** The name of the agent's virtio-serial port, which the guest agent looks for. */
export const AGENT_PORT_NAME = "vhive.agent";

/** The fd of the child on which QEMU writes the serial console. */
export const SERIAL_FD = 3;

/**
 * The fd of the child on which a restore's device state comes in (`-incoming` from `fd:4`),
 * inherited at spawn: QEMU needs no helper process (as `exec:cat` would be) to read it.
 */
export const MIGRATION_FD = 4;

/** The fd of the child that is the host end of the guest agent's port (src/vm/agent.ts). */
export const AGENT_FD = 5;

/**
 * QEMU's seccomp filter: no fork/exec (spawn), no setuid and friends (elevateprivileges), no
 * obsolete system calls. Guest memory, the pager's userfaultfd and user networking need none.
 * Saving a snapshot still spawns `cat` (QEMU 7.2 has no outgoing migration to an inherited fd
 * without fd passing over the monitor), so a VM whose guest RAM is a shared file, one that may
 * be saved, runs without it; every other VM (boots, restores) runs with it.
 */
export const SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny";

/** Whether a VM runs under the seccomp sandbox: all but those that may save a snapshot. */
export function sandboxed(spec: Pick<VmSpec, "memoryFile">): boolean {
  return spec.memoryFile?.share !== true;
}

export function kernelCommandLine(spec: Pick<VmSpec, "accel" | "tscKhz">, kernelArgs: readonly string[] = []): string {
  const words = ["console=ttyS0", "reboot=t", "panic=-1", "quiet", "pci=off"];
  if (spec.accel === "tcg") {
    // lpj = loops per jiffy at the TSC rate and the guest's HZ=250; skips delay calibration.
    words.push(`tsc_early_khz=${spec.tscKhz}`, `lpj=${spec.tscKhz * 4}`);
  }
  words.push(...kernelArgs);
  return words.join(" ");
}

/** QEMU option values escape a comma by doubling it. */
function escapeOption(value: string): string {
  return value.replaceAll(",", ",,");
}

export function qemuArgs(spec: VmSpec): string[] {
  const { machine, cpu } = machineOf(spec.accel);
  const args = [
    "-M", spec.memoryFile ? `${machine},memory-backend=mem` : machine,
    "-accel", spec.accel,
    "-cpu", cpu,
    "-m", `${spec.memMib}M`,
    "-smp", String(spec.vcpus),
    "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-S",
    ...(sandboxed(spec) ? ["-sandbox", SANDBOX] : []),
    "-chardev", `socket,id=serial0,fd=${SERIAL_FD}`,
    "-serial", "chardev:serial0",
    "-chardev", "stdio,id=qmp0,signal=off",
    "-mon", "chardev=qmp0,mode=control",
  ];
  if (spec.memoryFile) {
    const { path, share } = spec.memoryFile;
    args.push("-object", `memory-backend-file,id=mem,size=${spec.memMib}M,mem-path=${escapeOption(path)},share=${share ? "on" : "off"}`);
  }
  if (spec.boot) {
    args.push("-kernel", spec.boot.kernelPath, "-initrd", spec.boot.initramfsPath, "-append", kernelCommandLine(spec, spec.boot.kernelArgs));
  }
  if (spec.incoming) args.push("-incoming", "defer");
  for (const device of optionalDevices(spec)) args.push(...device.args);
  return args;
}
