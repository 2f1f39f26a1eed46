import { describe, expect, it } from "vitest";
import { tscKhzFromCpuinfo, tscKhzFromKernelLog } from "../../../src/vm/tsc.js";

describe("host TSC rate", () => {
  it("prefers the refined calibration in the kernel log over the first detection", () => {
    const log = "[0.0] tsc: Detected 2596.144 MHz processor\n[1.2] tsc: Refined TSC clocksource calibration: 2596.001 MHz\n";
    expect(tscKhzFromKernelLog(log)).toBe(2596001);
    expect(tscKhzFromKernelLog("[0.0] tsc: Detected 2200.000 MHz processor")).toBe(2200000);
    expect(tscKhzFromKernelLog("nothing here")).toBeUndefined();
  });

  it("falls back to cpu MHz of /proc/cpuinfo", () => {
    expect(tscKhzFromCpuinfo("processor\t: 0\ncpu MHz\t\t: 2596.144\n")).toBe(2596144);
    expect(tscKhzFromCpuinfo("processor\t: 0\n")).toBeUndefined();
  });
});
