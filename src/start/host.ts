/**
 * What every VM start on this host needs, gathered once: state paths, QEMU, the guest kernel
 * and initramfs, the accelerator that really works, and the TSC rate.
 */
import { mkdir } from "node:fs/promises";
import { prepareGuest, type Guest } from "../guest/index.js";
import type { Log } from "../shared/log.js";
import { StatePaths } from "../shared/paths.js";
import { chooseAccel, hostTscKhz, probeAccel, qemuInfo, type Accel, type AccelProbe, type AccelRequest, type QemuInfo } from "../vm/index.js";

export interface Host {
  paths: StatePaths;
  log: Log;
  qemu: QemuInfo;
  guest: Guest;
  accel: Accel;
  accelProbe: AccelProbe;
  tscKhz: number;
}

export interface OpenHostOptions {
  stateDir: string;
  accel: AccelRequest;
  log: Log;
  qemuPath?: string;
}

/** Which accelerator can run this guest on this host (cached in the state directory). */
export function probeHostAccel(paths: StatePaths, qemu: QemuInfo, guest: Guest, tscKhz: number, log: Log): Promise<AccelProbe> {
  return probeAccel({
    qemuPath: qemu.path,
    qemuVersion: qemu.versionLine,
    kernelPath: guest.kernel.path,
    kernelDigest: guest.kernel.digest,
    initramfsPath: guest.initramfs.path,
    tscKhz,
    cachePath: paths.accelCache,
    runRoot: paths.vmsDir,
    log,
  });
}

export async function openHost(options: OpenHostOptions): Promise<Host> {
  const paths = new StatePaths(options.stateDir);
  await mkdir(paths.root, { recursive: true });
  await mkdir(paths.vmsDir, { recursive: true });
  // Independent of each other (each a tool run or a file read): a shim opens this on every container start.
  const [qemu, guest, tscKhz] = await Promise.all([qemuInfo(options.qemuPath), prepareGuest(paths), hostTscKhz()]);
  const accelProbe = await probeHostAccel(paths, qemu, guest, tscKhz, options.log);
  return { paths, log: options.log, qemu, guest, accel: chooseAccel(options.accel, accelProbe), accelProbe, tscKhz };
}
