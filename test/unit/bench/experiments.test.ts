/** The experiments' order of work, with the orchestrator faked: no VM. */
import { beforeEach, describe, expect, it, vi } from "vitest";

const calls: string[] = [];
let workingSetInput: string | undefined;
/** The encodings the fake working set is stored in. */
let codecs: string[] = [];

vi.mock("../../../src/start/index.js", () => ({
  usableSnapshot: vi.fn(async () => ({ meta: { id: "snap" }, dir: "/nowhere", memPath: "/nowhere/mem", statePath: "/nowhere/state" })),
  defaultRequestData: () => "world",
  evictRestoreFiles: vi.fn(async () => void calls.push("evict the snapshot's files")),
  restoreOnce: vi.fn(async (_host: unknown, _snapshot: unknown, data: string, options: { mode: string; evict?: boolean; wsCodec?: string; wsRead?: string }) => {
    const variant = [options.wsCodec, options.wsRead].filter(Boolean).join(" ");
    calls.push(`restore ${options.mode}${variant ? ` ${variant}` : ""}${options.evict ? " evicted" : ""} ${data}`);
    if (options.mode === "record") {
      workingSetInput = data;
      codecs = ["lz4"];
    }
    return {
      snapshot: { id: "snap", function: "helloworld" },
      mode: options.mode,
      accel: "tcg",
      response: { message: `Hello, ${data}!` },
      text: `Hello, ${data}!`,
      totalMs: 400,
      breakdown: { loadVmmMs: 40, restoreMs: 10, memoryWaitMs: 0, resumeMs: 1, connectMs: 270, functionMs: 79 },
      fetchWsMs: 0,
      installWsMs: 0,
      faults: 20,
      wsPages: options.mode === "record" || options.mode === "prefetch" ? 100 : 0,
      wsBytes: 0,
      majorFaults: 20,
      bytesRead: 1 << 20,
    };
  }),
  runOnce: vi.fn(async (_host: unknown, _image: unknown, data: string) => {
    calls.push(`boot ${data}`);
    return { image: { id: "img", name: "helloworld" }, accel: "tcg", response: {}, text: "Hello, world!", totalMs: 7000, bootMs: 6900, invokeMs: 100, breakdown: { qemuStartMs: 40, kernelBootMs: 2400, initMs: 500, functionReadyMs: 3960, invokeMs: 100 } };
  }),
  bootInstance: vi.fn(async () => {
    calls.push("boot warm instance");
    return {
      invoke: async (data: string) => {
        calls.push(`invoke ${data}`);
        return { response: {}, text: "Hello, world!", ms: 1.234 };
      },
      [Symbol.asyncDispose]: async () => void calls.push("stop warm instance"),
    };
  }),
}));
vi.mock("../../../src/memory/index.js", () => ({
  loadWorkingSet: vi.fn(async () => (workingSetInput === undefined ? undefined : { meta: { input: workingSetInput } })),
  pickEncoding: (_ws: unknown, codec?: string) => (codec === undefined || codecs.includes(codec) ? { codec: codec ?? codecs[0] } : undefined),
  addEncoding: vi.fn(async (_snapshot: unknown, ws: unknown, codec: string) => {
    calls.push(`pack ${codec}`);
    codecs.push(codec);
    return ws;
  }),
}));
vi.mock("../../../src/snapshot/index.js", () => ({
  evictFromPageCache: vi.fn(async (paths: string[]) => void calls.push(`evict ${paths.length} files`)),
}));

const { benchColdStarts, benchConcurrency } = await import("../../../src/bench/experiments.js");
const host = { accel: "tcg", guest: { kernel: { path: "/k" }, initramfs: { path: "/i" } } } as never;
const image = { id: "img", name: "helloworld", rootfsPath: "/r", config: { protocol: "grpc" } } as never;

beforeEach(() => {
  calls.length = 0;
  workingSetInput = undefined;
  codecs = [];
});

describe("the cold-start experiment", () => {
  it("runs warm on one instance first, then interleaves the cold modes rep by rep", async () => {
    const progress: string[] = [];
    const report = await benchColdStarts(host, [image], { modes: ["prefetch", "record", "boot", "warm"], reps: 2, onProgress: (done, total) => progress.push(`${done}/${total}`) });
    expect(calls).toEqual([
      "boot warm instance",
      "invoke world", // the warm-up, not a row
      "invoke world",
      "invoke world",
      "stop warm instance",
      "evict 3 files",
      "boot world",
      "restore record evicted world",
      "restore prefetch evicted world",
      "evict 3 files",
      "boot world",
      "restore record evicted world",
      "restore prefetch evicted world",
    ]);
    expect(report.rows.map((row) => `${row.mode} ${row.rep}`)).toEqual(["warm 1", "warm 2", "boot 1", "record 1", "prefetch 1", "boot 2", "record 2", "prefetch 2"]);
    expect(report.rows[0]).toMatchObject({ totalMs: 1.2, breakdown: { invokeMs: 1.2 }, faults: null });
    expect(report.functions).toEqual([{ function: "helloworld", imageId: "img", snapshotId: "snap", input: "world" }]);
    expect(progress.at(-1)).toBe("8/8");
  });

  it("records a working set for prefetch first, unless one exists for the same input", async () => {
    await benchColdStarts(host, [image], { modes: ["prefetch"], reps: 1 });
    expect(calls).toEqual(["restore record world", "restore prefetch evicted world"]);
    calls.length = 0;
    await benchColdStarts(host, [image], { modes: ["prefetch"], reps: 1 });
    expect(calls).toEqual(["restore prefetch evicted world"]);
    calls.length = 0;
    workingSetInput = "another input";
    await benchColdStarts(host, [image], { modes: ["prefetch"], reps: 1 });
    expect(calls).toEqual(["restore record world", "restore prefetch evicted world"]);
  });

  it("runs the prefetch variants as prefetch with one setting pinned, each encoding packed first", async () => {
    const report = await benchColdStarts(host, [image], { modes: ["prefetch-cached", "prefetch-raw", "prefetch", "prefetch-lz4", "prefetch-direct"], reps: 1 });
    expect(calls).toEqual([
      "restore record world", // recorded in lz4, the default
      "pack raw",
      "restore prefetch evicted world",
      "restore prefetch raw evicted world",
      "restore prefetch lz4 evicted world",
      "restore prefetch direct evicted world",
      "restore prefetch cached evicted world",
    ]);
    expect(report.rows.map((row) => row.mode)).toEqual(["prefetch", "prefetch-raw", "prefetch-lz4", "prefetch-direct", "prefetch-cached"]);
  });

  it("records a working set first for the pooled modes too, and runs them after the floor", async () => {
    const report = await benchColdStarts(host, [image], { modes: ["pool-installed", "floor", "pool", "prefetch"], reps: 1 });
    expect(calls).toEqual(["restore record world", "restore prefetch evicted world", "restore floor evicted world", "restore pool evicted world", "restore pool-installed evicted world"]);
    expect(report.modes).toEqual(["prefetch", "floor", "pool", "pool-installed"]);
  });
});

describe("--reps auto in the experiments", () => {
  const auto = { minRounds: 3, maxTimeMs: 60_000, targetShare: 0.05 };

  it("coldstart runs the minimum, stops when the ratios are precise, and records how each function ended", async () => {
    const statuses: string[] = [];
    const report = await benchColdStarts(host, [image], { modes: ["vanilla", "prefetch"], reps: auto, onRound: (s) => statuses.push(`${s.series} ${s.round} ${s.ratios.map((r) => r.label).join(",")} ${s.stoppedBy ?? ""}`) });
    // every restore takes 400 ms here, so vanilla / prefetch is exactly 1 from the second round on
    expect(report.rows.map((row) => `${row.mode} ${row.rep}`)).toEqual(["vanilla 1", "prefetch 1", "vanilla 2", "prefetch 2", "vanilla 3", "prefetch 3"]);
    expect(statuses).toEqual(["helloworld 1 vanilla / prefetch ", "helloworld 2 vanilla / prefetch ", "helloworld 3 vanilla / prefetch precise"]);
    expect(report.reps).toBe(3);
    expect(report.auto).toEqual({ ...auto, outcomes: [{ series: "helloworld", rounds: 3, stoppedBy: "precise", tooWide: [] }] });
  });

  it("refuses auto when the modes give no ratio to narrow, before any start", async () => {
    await expect(benchColdStarts(host, [image], { modes: ["warm", "vanilla"], reps: auto })).rejects.toMatchObject({ code: "ERR_VALIDATION" });
    expect(calls).toEqual([]);
  });

  it("concurrency runs each level as its own series", async () => {
    const report = await benchConcurrency(host, image, { levels: [1, 2], modes: ["vanilla", "prefetch"], reps: auto });
    expect(report.auto!.outcomes.map((o) => `${o.series}: ${o.rounds} ${o.stoppedBy}`)).toEqual(["1 at once: 3 precise", "2 at once: 3 precise"]);
    expect(report.rows.filter((row) => row.concurrency === 2)).toHaveLength(3 * 2 * 2);
  });
});

describe("the concurrency experiment", () => {
  it("starts `level` restores at once, evicting once per round before any of them", async () => {
    const report = await benchConcurrency(host, image, { levels: [1, 3], modes: ["vanilla"], reps: 1 });
    expect(calls).toEqual(["evict the snapshot's files", "restore vanilla world", "evict the snapshot's files", "restore vanilla world", "restore vanilla world", "restore vanilla world"]);
    expect(report.rows.map((row) => row.concurrency)).toEqual([1, 3, 3, 3]);
  });
});
