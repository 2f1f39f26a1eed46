import { describe, expect, it } from "vitest";
import { parseMajorFaults, parseReadBytes, parseSchedstat, processCpu, processIo } from "../../../src/vm/procstat.js";

describe("process counters", () => {
  it("reads major faults after a command name with spaces and parentheses", () => {
    const stat = "4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 5000 0 123 0 1 2 0 0 20 0 3 0 100 0 0";
    expect(parseMajorFaults(stat)).toBe(123);
  });

  it("reads read_bytes from /proc/<pid>/io", () => {
    expect(parseReadBytes("rchar: 10\nwchar: 0\nsyscr: 1\nsyscw: 0\nread_bytes: 8192\nwrite_bytes: 0\n")).toBe(8192);
  });

  it("reads a thread's time on a core and waiting for one from schedstat, in ms", () => {
    expect(parseSchedstat("1500000000 250000000 42\n")).toEqual({ runMs: 1500, waitMs: 250 });
  });

  it("sums this process's threads' CPU time", async () => {
    const cpu = await processCpu(process.pid);
    expect(cpu.runMs).toBeGreaterThan(0);
    expect(cpu.waitMs).toBeGreaterThanOrEqual(0);
  });

  it("reads this process's own counters", async () => {
    const io = await processIo(process.pid);
    expect(io.majorFaults).toBeGreaterThanOrEqual(0);
    expect(io.bytesRead).toBeGreaterThanOrEqual(0);
  });
});
