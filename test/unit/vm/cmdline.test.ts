import { describe, expect, it } from "vitest";
import { deviceSignature, kernelCommandLine, qemuArgs, type VmSpec } from "../../../src/vm/cmdline.js";

const spec: VmSpec = {
  qemuPath: "qemu-system-x86_64",
  accel: "tcg",
  boot: { kernelPath: "/k/vmlinux", initramfsPath: "/k/initramfs.cpio" },
  rootfsPath: "/images/a,b/rootfs.ext4",
  memMib: 256,
  vcpus: 1,
  tscKhz: 2596144,
  forward: { hostPort: 40001, guestPort: 50051 },
};

function optionValue(args: string[], option: string): string[] {
  return args.flatMap((arg, i) => (arg === option ? [args[i + 1]!] : []));
}

describe("QEMU command line", () => {
  it("gives a TCG guest the host TSC rate, which microvm needs to boot", () => {
    expect(kernelCommandLine(spec)).toContain("tsc_early_khz=2596144");
    expect(kernelCommandLine(spec)).toContain("lpj=10384576");
    expect(kernelCommandLine({ ...spec, accel: "kvm" })).not.toContain("tsc_early_khz");
  });

  it("starts paused on microvm with QMP on stdio, the console on fd 3 and the guest agent's port on fd 5", () => {
    const args = qemuArgs(spec);
    expect(optionValue(args, "-M")).toEqual(["microvm"]);
    expect(args).toContain("-S");
    expect(args).toContain("-no-reboot");
    expect(optionValue(args, "-chardev")).toEqual(["socket,id=serial0,fd=3", "stdio,id=qmp0,signal=off", "socket,id=agent0,fd=5"]);
    expect(optionValue(args, "-device")).toContain("virtserialport,chardev=agent0,name=vhive.agent");
    expect(optionValue(args, "-mon")).toEqual(["chardev=qmp0,mode=control"]);
    expect(optionValue(args, "-m")).toEqual(["256M"]);
    expect(optionValue(args, "-cpu")).toEqual(["max"]);
  });

  it("attaches the root disk read-only, escaping commas in its path", () => {
    const drive = optionValue(qemuArgs(spec), "-drive")[0];
    expect(drive).toBe("id=rootfs,file=/images/a,,b/rootfs.ext4,format=raw,if=none,readonly=on");
  });

  it("forwards only a loopback port, with the guest cut off from host and network", () => {
    expect(optionValue(qemuArgs(spec), "-netdev")).toEqual(["user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40001-:50051"]);
  });

  it("backs guest RAM with a file, shared to make a snapshot and private to restore one", () => {
    const create = qemuArgs({ ...spec, memoryFile: { path: "/s/mem", share: true } });
    expect(optionValue(create, "-M")).toEqual(["microvm,memory-backend=mem"]);
    expect(optionValue(create, "-object")).toEqual(["memory-backend-file,id=mem,size=256M,mem-path=/s/mem,share=on"]);
    const restore = qemuArgs({ ...spec, boot: undefined, incoming: true, memoryFile: { path: "/s/mem", share: false } });
    expect(optionValue(restore, "-object")[0]).toContain("share=off");
    expect(optionValue(restore, "-incoming")).toEqual(["defer"]);
    // Loading the kernel again would overwrite the snapshot's memory with a pristine kernel.
    expect(restore).not.toContain("-kernel");
    expect(restore).not.toContain("-initrd");
  });

  it("signs the guest's devices as snapshots recorded them, without the host port", () => {
    // Snapshots store this string: it must not change, or every existing snapshot stops matching.
    expect(deviceSignature(spec)).toBe("serial:isa,virtio-blk:rootfs:ro,virtio-net:user:restrict:guest-port=50051,virtio-serial:vhive.agent");
    expect(deviceSignature({ ...spec, forward: { hostPort: 1, guestPort: 50051 } })).toBe(deviceSignature(spec));
    expect(deviceSignature({ rootfsPath: undefined, forward: undefined })).toBe("serial:isa");
  });

  it("has no disk or network for a probe boot", () => {
    const args = qemuArgs({ ...spec, rootfsPath: undefined, forward: undefined, boot: { ...spec.boot!, kernelArgs: ["vhive.probe=1"] } });
    expect(args).not.toContain("-drive");
    expect(args).not.toContain("-netdev");
    expect(optionValue(args, "-device")).toEqual([]);
    expect(optionValue(args, "-append")[0]).toMatch(/ vhive\.probe=1$/);
  });

  it("runs boots and restores under the seccomp sandbox, but not a VM whose shared guest RAM may be saved", () => {
    expect(optionValue(qemuArgs(spec), "-sandbox")).toEqual(["on,obsolete=deny,elevateprivileges=deny,spawn=deny"]);
    expect(optionValue(qemuArgs({ ...spec, boot: undefined, incoming: true, memoryFile: { path: "/s/mem", share: false } }), "-sandbox")).toHaveLength(1);
    expect(optionValue(qemuArgs({ ...spec, memoryFile: { path: "/s/mem", share: true } }), "-sandbox")).toEqual([]);
  });
});
