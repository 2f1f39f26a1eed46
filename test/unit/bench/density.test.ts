/** `vhive bench density` with the orchestrator and /proc faked: the order of work, the host guard, cleanup. */
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { MemoryProbe, ProcessMemory } from "../../../src/vm/index.js";

const MIB = 1024 * 1024;
const calls: string[] = [];
let running = new Set<number>();
let nextPid = 100;
/** Instances that fail their check call, by start order (1-based). */
let failing = new Set<number>();

function fakeInstance(kind: string, withPager: boolean) {
  const pid = nextPid++;
  const order = pid - 99;
  running.add(pid);
  const end = (how: string) => async () => {
    if (running.delete(pid)) calls.push(`${how} ${order}`);
  };
  return {
    vm: { pid, timeline: { spawnAt: performance.now() - 300 } },
    pager: withPager ? { pid: pid + 10_000 } : undefined,
    start: { kind },
    invoke: vi.fn(async (data: string) => {
      calls.push(`invoke ${order}`);
      if (failing.has(order)) throw Object.assign(new Error("connection reset"), {});
      return { response: {}, text: `Hello, ${data}!`, ms: 12.34 };
    }),
    stop: end("stop"),
    destroy: end("destroy"),
  };
}

vi.mock("../../../src/start/index.js", () => ({
  usableSnapshot: vi.fn(async () => ({ meta: { id: "snap", fingerprint: { memMib: 256 } }, memPath: "/nowhere/mem", statePath: "/nowhere/state" })),
  defaultRequestData: () => "world",
  memMibFor: () => 256,
  restoreInstance: vi.fn(async (_host: unknown, _snapshot: unknown, options: { mode: string; evict?: boolean }) => {
    calls.push(`restore ${options.mode}${options.evict ? " evicted" : ""}`);
    return fakeInstance(options.mode, ["lazy", "prefetch", "floor"].includes(options.mode));
  }),
  bootInstance: vi.fn(async () => {
    calls.push("boot");
    return fakeInstance("boot", false);
  }),
  restoreOnce: vi.fn(async (_h: unknown, _s: unknown, data: string, options: { mode: string }) => {
    calls.push(`record ${data} (${options.mode})`);
    return {};
  }),
  runOnce: vi.fn(),
}));
vi.mock("../../../src/memory/index.js", () => ({ loadWorkingSet: vi.fn(async () => undefined) }));
vi.mock("../../../src/snapshot/index.js", () => ({ evictFromPageCache: vi.fn(async () => void calls.push("evict image")) }));

const { benchDensity, summarizeDensity } = await import("../../../src/bench/density.js");
const { buildReport } = await import("../../../src/bench/report.js");
const host = { accel: "tcg", guest: { kernel: { path: "/k" }, initramfs: { path: "/i" } } } as never;
const image = { id: "img", name: "helloworld", rootfsPath: "/r", config: { protocol: "grpc" } } as never;

const memory = (pss: number, anon: number): ProcessMemory => ({ rssBytes: pss, pssBytes: pss, pssAnonBytes: anon, pssFileBytes: pss - anon, pssShmemBytes: 0, privateBytes: anon, anonymousBytes: anon });

/** A host of `totalMib` whose available memory drops by `perInstanceMib` for each running instance. */
function fakeProbe(totalMib: number, availableMib: number, perInstanceMib: number): MemoryProbe {
  return {
    host: async () => ({ totalBytes: totalMib * MIB, availableBytes: (availableMib - running.size * perInstanceMib) * MIB }),
    process: async (pid) => (pid > 10_000 ? memory(2 * MIB, 2 * MIB) : memory(perInstanceMib * MIB, (perInstanceMib - 20) * MIB)),
    guestRam: async () => ({ sizeBytes: 256 * MIB, rssBytes: 60 * MIB, pssBytes: 40 * MIB, privateBytes: 30 * MIB, anonymousBytes: 30 * MIB, pageCachePssBytes: 10 * MIB, file: "/nowhere/mem" }),
  };
}

beforeEach(() => {
  calls.length = 0;
  running = new Set();
  nextPid = 100;
  failing = new Set();
});

describe("the density experiment", () => {
  it("starts N per mode, checks each answers once all are up, measures them, then stops them all before the next mode", async () => {
    const report = await benchDensity(host, image, { instances: 3, modes: ["prefetch", "vanilla"], probe: fakeProbe(16_384, 12_000, 100) });
    expect(calls).toEqual([
      "restore vanilla evicted",
      "invoke 1", // the first answers once for the estimate
      "restore vanilla",
      "restore vanilla",
      "invoke 1",
      "invoke 2",
      "invoke 3",
      "stop 1",
      "stop 2",
      "stop 3",
      "record world (record)", // prefetch needs a working set for the bench's input
      "restore prefetch evicted",
      "invoke 4",
      "restore prefetch",
      "restore prefetch",
      "invoke 4",
      "invoke 5",
      "invoke 6",
      "stop 4",
      "stop 5",
      "stop 6",
    ]);
    expect(running.size).toBe(0);
    expect(report.modes).toEqual(["vanilla", "prefetch"]);
    expect(report.rows.map((row) => `${row.mode} ${row.instance}`)).toEqual(["vanilla 1", "vanilla 2", "vanilla 3", "prefetch 1", "prefetch 2", "prefetch 3"]);
    const [vanilla, prefetch] = [report.rows[0]!, report.rows[3]!];
    expect(vanilla).toMatchObject({ reply: "Hello, world!", pssBytes: 100 * MIB, pagerPssBytes: null, guestPssBytes: 40 * MIB, guestPageCachePssBytes: 10 * MIB, otherPssBytes: 60 * MIB });
    expect(prefetch).toMatchObject({ pssBytes: 102 * MIB, qemuPssBytes: 100 * MIB, pagerPssBytes: 2 * MIB });
    expect(vanilla.startMs).toBeGreaterThanOrEqual(300);
    expect(report.results[0]).toMatchObject({ mode: "vanilla", instances: 3, memAvailableBeforeBytes: 12_000 * MIB, memAvailableAfterBytes: 11_700 * MIB });

    const [summary] = summarizeDensity(report);
    expect(summary).toMatchObject({ mode: "vanilla", pssBytes: 100 * MIB, totalPssBytes: 300 * MIB, memDropPerInstanceBytes: 100 * MIB, guestAnonBytes: 30 * MIB });
  });

  it("boots as a reference, with the image evicted first", async () => {
    const report = await benchDensity(host, image, { instances: 2, modes: ["boot"], probe: fakeProbe(16_384, 12_000, 100) });
    expect(calls).toEqual(["evict image", "boot", "invoke 1", "boot", "invoke 1", "invoke 2", "stop 1", "stop 2"]);
    expect(report.snapshotId).toBeUndefined(); // boot alone needs no snapshot
  });

  it("refuses an N that would not fit, estimated from the first instance, and ends that one", async () => {
    // 8 GiB host (512 MiB kept free), 4 GiB available, 1 GiB and its pager's 2 MiB per instance: 3 fit, not 10
    const run = benchDensity(host, image, { instances: 10, modes: ["floor"], probe: fakeProbe(8192, 4096, 1024) });
    await expect(run).rejects.toMatchObject({ code: "ERR_HOST_MEMORY", remedy: expect.stringContaining("--instances 3 or fewer") });
    await expect(run).rejects.toThrow(/10 floor instances of helloworld would not fit: about 1026 MiB each \(measured on the first\)/);
    expect(calls).toEqual(["restore floor evicted", "invoke 1", "destroy 1"]);
    expect(running.size).toBe(0);
  });

  it("stops at once when the host runs low while starting, ending every instance", async () => {
    // The first takes 100 MiB, so the estimate lets 5 start; the later ones take 900 each, and the
    // check before each start stops the run once less than one more (and the headroom) is left.
    const probe: MemoryProbe = {
      ...fakeProbe(8192, 3000, 100),
      host: async () => ({ totalBytes: 8192 * MIB, availableBytes: (3000 - (running.size <= 1 ? 100 * running.size : 900 * running.size)) * MIB }),
    };
    await expect(benchDensity(host, image, { instances: 5, modes: ["lazy"], probe })).rejects.toMatchObject({ code: "ERR_HOST_MEMORY", message: expect.stringMatching(/ran low on memory after 3 lazy instances/) });
    expect(running.size).toBe(0);
    expect(calls.filter((call) => call.startsWith("destroy"))).toEqual(["destroy 1", "destroy 2", "destroy 3"]);
  });

  it("an instance that does not answer with all up fails the run, naming it, and every instance is ended", async () => {
    failing = new Set([2]);
    await expect(benchDensity(host, image, { instances: 3, modes: ["vanilla"], probe: fakeProbe(16_384, 12_000, 100) })).rejects.toMatchObject({
      code: "ERR_INVOKE",
      message: expect.stringContaining("vanilla instance 2 of 3 (helloworld) did not answer with all 3 up: connection reset"),
    });
    expect(running.size).toBe(0);
  });

  it("Ctrl-C ends every instance started so far", async () => {
    const controller = new AbortController();
    const probe = fakeProbe(16_384, 12_000, 100);
    let measured = 0;
    const aborting = { ...probe, process: async (pid: number) => (++measured === 1 && controller.abort(), probe.process(pid)) };
    await expect(benchDensity(host, image, { instances: 4, modes: ["vanilla"], probe: aborting, signal: controller.signal })).rejects.toMatchObject({ code: "ERR_ABORTED" });
    expect(running.size).toBe(0);
    expect(calls).toEqual(["restore vanilla evicted", "invoke 1", "destroy 1"]);
  });

  it("refuses a bad --instances before any start", async () => {
    for (const instances of [0, 1.5, 100_000]) {
      await expect(benchDensity(host, image, { instances, modes: ["vanilla"], probe: fakeProbe(16_384, 12_000, 100) })).rejects.toMatchObject({ code: "ERR_VALIDATION" });
    }
    expect(calls).toEqual([]);
  });

  it("the report has a density section with memory per instance per mode, and its chart", async () => {
    const report = await benchDensity(host, image, { instances: 2, modes: ["vanilla", "prefetch"], probe: fakeProbe(16_384, 12_000, 100) });
    const { markdown, svgs } = await buildReport({ density: report }, "m");
    expect(markdown).toContain("## Density: idle instances");
    expect(markdown).toMatch(/\| vanilla \| 2 \| [\d.]+ \| \d+ \| 100\.0 \| 80\.0 \| 30\.0 \| 10\.0 \| 60\.0 \|  \| 200\.0 \| 12000\.0 → 11800\.0 \| 100\.0 \|/);
    expect(markdown).toMatch(/\| prefetch \| 2 \| .* \| 102\.0 \| .* \| 2\.0 \| 204\.0 \|/);
    expect([...svgs.keys()]).toEqual(["density.svg"]);
    expect(svgs.get("density.svg")).toContain("guest RAM: shared page cache (PSS)");
  });
});
