/**
 * The host's TSC rate. Under TCG the guest's TSC ticks at the host's rate, and -M microvm has no
 * PIT/HPET for the kernel to calibrate against, so without `tsc_early_khz` the guest hangs in
 * calibration. Sources, most precise first: the kernel log's refined calibration, its first
 * detection, then /proc/cpuinfo.
 */
import { readFile } from "node:fs/promises";
import { VhiveError } from "../shared/errors.js";
import { runTool } from "../shared/tool.js";

export function tscKhzFromKernelLog(log: string): number | undefined {
  const refined = /Refined TSC clocksource calibration: (\d+\.\d+) MHz/.exec(log);
  const detected = /tsc: Detected (\d+\.\d+) MHz processor/.exec(log);
  const mhz = refined?.[1] ?? detected?.[1];
  return mhz === undefined ? undefined : Math.round(Number(mhz) * 1000);
}

export function tscKhzFromCpuinfo(cpuinfo: string): number | undefined {
  const mhz = /^cpu MHz\s*:\s*(\d+(?:\.\d+)?)/m.exec(cpuinfo)?.[1];
  return mhz === undefined ? undefined : Math.round(Number(mhz) * 1000);
}

let cached: number | undefined;

export async function hostTscKhz(): Promise<number> {
  if (cached !== undefined) return cached;
  const kernelLog = await runTool("dmesg", [], { failCode: "ERR_VALIDATION", step: "reading the kernel log" })
    .then((result) => result.stdout)
    .catch(() => "");
  const fromLog = tscKhzFromKernelLog(kernelLog);
  const khz = fromLog ?? tscKhzFromCpuinfo(await readFile("/proc/cpuinfo", "utf8"));
  if (khz === undefined) {
    throw new VhiveError("ERR_HOST_UNSUPPORTED", "cannot tell the host TSC rate from the kernel log or /proc/cpuinfo", {
      remedy: "run vhive on an x86_64 Linux host whose kernel log (dmesg) or /proc/cpuinfo reports the TSC rate",
    });
  }
  cached = khz;
  return khz;
}
