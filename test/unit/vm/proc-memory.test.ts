import { describe, expect, it } from "vitest";
import { guestRamOf, parseMeminfo, parseSmaps, parseSmapsRollup, procMemoryProbe } from "../../../src/vm/proc-memory.js";

const KIB = 1024;

const ROLLUP = `559d57445000-7ffeef7a0000 ---p 00000000 00:00 0                          [rollup]
Rss:              120000 kB
Pss:               70000 kB
Pss_Dirty:         30000 kB
Pss_Anon:          30000 kB
Pss_File:          40000 kB
Pss_Shmem:             8 kB
Shared_Clean:      60000 kB
Shared_Dirty:          0 kB
Private_Clean:     20000 kB
Private_Dirty:     40000 kB
Anonymous:         30000 kB
THPeligible:           0
`;

/** A QEMU's guest RAM (256 MiB, the memory file mapped privately) between two small mappings. */
const SMAPS = `55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 260386                     /usr/bin/qemu-system-x86_64
Size:                  8 kB
Rss:                   8 kB
Pss:                   8 kB
Private_Clean:         8 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
7f3a00000000-7f3a10000000 rw-p 00000000 fe:00 1234                       /state/snapshots/helloworld/abc/mem
Size:             262144 kB
Rss:              100000 kB
Pss:               60000 kB
Shared_Clean:      80000 kB
Private_Clean:         0 kB
Private_Dirty:     20000 kB
Anonymous:         20000 kB
VmFlags: rd wr mr mw me ac hg
7f3a10000000-7f3a10001000 ---p 00000000 00:00 0
Size:                  4 kB
Rss:                   0 kB
Pss:                   0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
Pss:                  16 kB
Anonymous:            16 kB
`;

describe("memory from /proc", () => {
  it("smaps_rollup: PSS by kind and private bytes (clean + dirty), in bytes", () => {
    expect(parseSmapsRollup(ROLLUP)).toEqual({
      rssBytes: 120000 * KIB,
      pssBytes: 70000 * KIB,
      pssAnonBytes: 30000 * KIB,
      pssFileBytes: 40000 * KIB,
      pssShmemBytes: 8 * KIB,
      privateBytes: 60000 * KIB,
      anonymousBytes: 30000 * KIB,
    });
  });

  it("guest RAM is the one mapping of exactly the guest's size; its page-cache share is its Pss beyond its anonymous pages", () => {
    const mappings = parseSmaps(SMAPS);
    expect(mappings.map((m) => m.sizeBytes)).toEqual([8 * KIB, 256 * 1024 * KIB, 4 * KIB, 132 * KIB]);
    expect(guestRamOf(mappings, 256 * 1024 * KIB)).toEqual({
      sizeBytes: 256 * 1024 * KIB,
      rssBytes: 100000 * KIB,
      pssBytes: 60000 * KIB,
      privateBytes: 20000 * KIB,
      anonymousBytes: 20000 * KIB,
      pageCachePssBytes: 40000 * KIB,
      file: "/state/snapshots/helloworld/abc/mem",
    });
    expect(guestRamOf(mappings, 512 * 1024 * KIB)).toBeUndefined();
    // two mappings of that size: cannot tell which is guest RAM
    expect(guestRamOf([...mappings, mappings[1]!], 256 * 1024 * KIB)).toBeUndefined();
  });

  it("meminfo: MemTotal and MemAvailable in bytes", () => {
    expect(parseMeminfo("MemTotal:       24683584 kB\nMemFree:        22229000 kB\nMemAvailable:   23946912 kB\n")).toEqual({ totalBytes: 24683584 * KIB, availableBytes: 23946912 * KIB });
  });

  it("reads this very process and host from /proc", async () => {
    const self = await procMemoryProbe.process(process.pid);
    expect(self.pssBytes).toBeGreaterThan(0);
    expect(self.privateBytes).toBeGreaterThan(0);
    const hostMemory = await procMemoryProbe.host();
    expect(hostMemory.availableBytes).toBeGreaterThan(0);
    expect(hostMemory.availableBytes).toBeLessThanOrEqual(hostMemory.totalBytes);
  });
});
