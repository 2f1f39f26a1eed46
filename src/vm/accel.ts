/**
 * Which accelerator can really run a guest. /dev/kvm existing is not enough: on some hosts
 * (nested virtualisation, as on vhive's own CI) KVM aborts QEMU or spins in emulation failures.
 * So the probe boots the guest kernel under KVM with vhive.probe=1, where init prints
 * "probe-ok" and powers off at once; if that line does not come within the deadline, TCG it is.
 * The verdict is cached in accel.json per QEMU version, guest kernel and host kernel.
 */
import { constants } from "node:fs";
import { access, readFile, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { formatDuration } from "../shared/duration.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { Accel } from "./cmdline.js";
import { MicroVm } from "./microvm.js";

export type AccelRequest = Accel | "auto";

export interface AccelProbe {
  accel: Accel;
  /** Why KVM is or is not used. */
  reason: string;
  qemuVersion: string;
  kernelDigest: string;
  hostKernel: string;
}

export interface ProbeInputs {
  qemuPath: string;
  qemuVersion: string;
  kernelPath: string;
  kernelDigest: string;
  initramfsPath: string;
  tscKhz: number;
  cachePath: string;
  runRoot: string;
  log: Log;
  /** How long a KVM guest may take to reach init (a working one needs well under a second). */
  deadlineMs?: number;
  kvmDevice?: string;
}

export async function probeAccel(inputs: ProbeInputs): Promise<AccelProbe> {
  const key = { qemuVersion: inputs.qemuVersion, kernelDigest: inputs.kernelDigest, hostKernel: release() };
  const cached = await readFile(inputs.cachePath, "utf8")
    .then((text) => JSON.parse(text) as AccelProbe)
    .catch(() => undefined);
  if (cached && cached.qemuVersion === key.qemuVersion && cached.kernelDigest === key.kernelDigest && cached.hostKernel === key.hostKernel) {
    return cached;
  }
  const verdict = await probeKvm(inputs);
  const probe: AccelProbe = { ...verdict, ...key };
  await writeFile(inputs.cachePath, JSON.stringify(probe, null, 2) + "\n");
  return probe;
}

async function probeKvm(inputs: ProbeInputs): Promise<{ accel: Accel; reason: string }> {
  const device = inputs.kvmDevice ?? "/dev/kvm";
  try {
    await access(device, constants.R_OK | constants.W_OK);
  } catch {
    return { accel: "tcg", reason: `${device} is missing or not accessible` };
  }
  const deadlineMs = inputs.deadlineMs ?? 8000;
  let vm: MicroVm | undefined;
  try {
    vm = await MicroVm.start(
      {
        qemuPath: inputs.qemuPath,
        accel: "kvm",
        boot: { kernelPath: inputs.kernelPath, initramfsPath: inputs.initramfsPath, kernelArgs: ["vhive.probe=1"] },
        memMib: 128,
        vcpus: 1,
        tscKhz: inputs.tscKhz,
      },
      { log: inputs.log, runRoot: inputs.runRoot },
    );
    await vm.resume();
    await vm.waitForGuest("probe-ok", { timeoutMs: deadlineMs });
    return { accel: "kvm", reason: "a KVM guest booted to init" };
  } catch (error) {
    const said = error instanceof VhiveError && error.details ? `: ${error.details.split("\n").filter(Boolean).slice(-3).join(" | ")}` : "";
    const what = error instanceof VhiveError && error.code === "ERR_READY_TIMEOUT"
      ? `a KVM guest did not reach init within ${formatDuration(deadlineMs)}`
      : `QEMU with KVM failed (${messageOf(error)}${said})`;
    return { accel: "tcg", reason: `${what}; using TCG (software emulation)` };
  } finally {
    await vm?.destroy();
  }
}

/** Resolve a user's --accel against the probe. */
export function chooseAccel(request: AccelRequest, probe: AccelProbe): Accel {
  if (request === "tcg") return "tcg";
  if (request === "kvm" && probe.accel !== "kvm") {
    throw new VhiveError("ERR_ACCEL_UNAVAILABLE", `KVM cannot run a guest on this host: ${probe.reason}`, {
      remedy: "use --accel tcg or --accel auto",
    });
  }
  return probe.accel;
}
