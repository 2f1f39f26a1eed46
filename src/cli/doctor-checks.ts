/**
 * `vhive doctor`: is this host ready to run function microVMs? Each check says what it found
 * and, when it fails, what to do. The accelerator probe boots the guest kernel once (then the
 * verdict is cached).
 */
import { constants } from "node:fs";
import { access, mkdir, open, statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { prepareGuest, type Guest } from "../guest/index.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import { StatePaths } from "../shared/paths.js";
import { TOOL_PACKAGES } from "../shared/tool.js";
import { probeHostAccel } from "../start/index.js";
import { hostTscKhz, qemuInfo, type AccelProbe, type QemuInfo } from "../vm/index.js";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  remedy?: string;
}

export interface DoctorReport {
  ok: boolean;
  stateDir: string;
  accel: "kvm" | "tcg" | null;
  accelReason: string | null;
  qemuVersion: string | null;
  kernel: { path: string; version: string; digest: string } | null;
  initramfs: { path: string; digest: string } | null;
  userfaultfd: boolean;
  tscKhz: number | null;
  freeDiskBytes: number | null;
  checks: Check[];
}

const MIN_FREE_BYTES = 4 * 1024 ** 3;
const BUILD_TOOLS = ["mmdebstrap", "mkfs.ext4", "lz4", "cpio", "umoci"];

async function attempt<T>(name: string, checks: Check[], run: () => Promise<{ value: T; detail: string }>): Promise<T | null> {
  try {
    const { value, detail } = await run();
    checks.push({ name, ok: true, detail });
    return value;
  } catch (error) {
    checks.push({ name, ok: false, detail: messageOf(error), remedy: error instanceof VhiveError ? error.remedy : undefined });
    return null;
  }
}

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (await access(`${dir}/${tool}`, constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

export async function runDoctor(stateDir: string, log: Log): Promise<DoctorReport> {
  const paths = new StatePaths(stateDir);
  await mkdir(paths.vmsDir, { recursive: true });
  const checks: Check[] = [];

  const qemu = await attempt<QemuInfo>("qemu", checks, async () => {
    const info = await qemuInfo();
    return { value: info, detail: info.versionLine };
  });
  const guest = await attempt<Guest>("guest kernel", checks, async () => {
    const prepared = await prepareGuest(paths);
    return { value: prepared, detail: `${prepared.kernel.version} (vmlinux ${prepared.kernel.digest.slice(0, 19)}), initramfs ${prepared.initramfs.digest.slice(0, 19)}` };
  });
  const tscKhz = await attempt<number>("host TSC rate", checks, async () => {
    const khz = await hostTscKhz();
    return { value: khz, detail: `${khz} kHz` };
  });
  let accel: AccelProbe | null = null;
  if (qemu && guest && tscKhz) {
    accel = await attempt<AccelProbe>("accelerator", checks, async () => {
      const probe = await probeHostAccel(paths, qemu, guest, tscKhz, log);
      return { value: probe, detail: `${probe.accel}: ${probe.reason}` };
    });
  } else {
    checks.push({ name: "accelerator", ok: false, detail: "not probed: needs QEMU, the guest kernel and the TSC rate", remedy: "fix the checks above" });
  }
  const userfaultfd = await attempt<boolean>("userfaultfd", checks, async () => {
    const handle = await open("/dev/userfaultfd", constants.O_RDWR).catch((error: NodeJS.ErrnoException) => {
      throw new VhiveError("ERR_HOST_UNSUPPORTED", `cannot open /dev/userfaultfd: ${error.code}`, {
        remedy: "run vhive as root on a kernel with CONFIG_USERFAULTFD (Linux >= 6.1 has /dev/userfaultfd); REAP needs it",
      });
    });
    await handle.close();
    return { value: true, detail: "/dev/userfaultfd can be opened" };
  });
  const freeDiskBytes = await attempt<number>("free disk", checks, async () => {
    const dir = stateDir;
    const stats = await statfs(dir).catch(() => statfs(dirname(dir)));
    const free = stats.bavail * stats.bsize;
    if (free < MIN_FREE_BYTES) {
      throw new VhiveError("ERR_HOST_UNSUPPORTED", `only ${(free / 1024 ** 3).toFixed(1)} GiB free under ${dir}`, {
        remedy: "free some space, or point --state / VHIVE_STATE at a larger disk (images and snapshots take GiBs)",
      });
    }
    return { value: free, detail: `${(free / 1024 ** 3).toFixed(1)} GiB free under ${dir}` };
  });
  for (const tool of BUILD_TOOLS) {
    const found = await onPath(tool);
    checks.push({
      name: tool,
      ok: found,
      detail: found ? "installed" : "not installed (needed to build or import images)",
      remedy: found ? undefined : `apt-get install ${TOOL_PACKAGES[tool] ?? tool}`,
    });
  }
  return {
    ok: checks.every((check) => check.ok),
    stateDir,
    accel: accel?.accel ?? null,
    accelReason: accel?.reason ?? null,
    qemuVersion: qemu?.version ?? null,
    kernel: guest ? { path: guest.kernel.path, version: guest.kernel.version, digest: guest.kernel.digest } : null,
    initramfs: guest ? { path: guest.initramfs.path, digest: guest.initramfs.digest } : null,
    userfaultfd: userfaultfd ?? false,
    tscKhz,
    freeDiskBytes,
    checks,
  };
}
