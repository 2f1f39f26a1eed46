import { describe, expect, it } from "vitest";
import { cpuBetween, parseMajorFaults, parseReadBytes, parseSchedstat, processIo, threadsCpu } from "../../../src/vm/procstat.js";

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

  it("reads this process's threads' CPU time, one entry per thread", async () => {
    const threads = await threadsCpu(process.pid);
    expect(threads.get(String(process.pid))!.runMs).toBeGreaterThan(0);
    expect(cpuBetween(undefined, threads).runMs).toBeGreaterThan(0);
  });

  it("takes what the threads alive at the end did since the start: a thread that exited counts neither way", () => {
    const before = new Map([
      ["1", { runMs: 100, waitMs: 10 }],
      ["2", { runMs: 500, waitMs: 50 }], // exited before the end
    ]);
    const after = new Map([
      ["1", { runMs: 180, waitMs: 15 }],
      ["3", { runMs: 40, waitMs: 4 }], // started meanwhile
    ]);
    expect(cpuBetween(before, after)).toEqual({ runMs: 120, waitMs: 9 });
  });

  it("reads this process's own counters", async () => {
    const io = await processIo(process.pid);
    expect(io.majorFaults).toBeGreaterThanOrEqual(0);
    expect(io.bytesRead).toBeGreaterThanOrEqual(0);
  });
});
