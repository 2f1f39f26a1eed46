import { describe, expect, it } from "vitest";
import { parseMajorFaults, parseReadBytes, processIo } from "../../../src/vm/procstat.js";

describe("process counters", () => {
  it("reads major faults after a command name with spaces and parentheses", () => {
    const stat = "4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 5000 0 123 0 1 2 0 0 20 0 3 0 100 0 0";
    expect(parseMajorFaults(stat)).toBe(123);
  });

  it("reads read_bytes from /proc/<pid>/io", () => {
    expect(parseReadBytes("rchar: 10\nwchar: 0\nsyscr: 1\nsyscw: 0\nread_bytes: 8192\nwrite_bytes: 0\n")).toBe(8192);
  });

  it("reads this process's own counters", async () => {
    const io = await processIo(process.pid);
    expect(io.majorFaults).toBeGreaterThanOrEqual(0);
    expect(io.bytesRead).toBeGreaterThanOrEqual(0);
  });
});
