import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeResults } from "../../../src/bench/index.js";
import type { TraceReport, TraceRow } from "../../../src/bench/trace/replay.js";
import { memoryTimeGibS, summarizeTrace } from "../../../src/bench/trace/summary.js";
import type { InstanceLifetime } from "../../../src/orchestrator/index.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

function life(fn: string, from: number, to: number | null, memMib = 1024, prewarmed = false): InstanceLifetime {
  return { instance: `${fn}-${from}`, function: fn, memMib, start: "prefetch", prewarmed, startedAt: at(from), readyAt: at(from + 1), endedAt: to === null ? null : at(to) };
}

function row(fn: string, seq: number, start: TraceRow["start"], latencyMs: number, runtimeMs = 100): TraceRow {
  return { seq, function: fn, dueMs: seq * 1000, lagMs: 0, latencyMs, status: "ok", start, instance: "i", serverMs: latencyMs, queueMs: 0, startMs: start === "warm" ? null : latencyMs - runtimeMs, invokeMs: runtimeMs, error: null, drawnMs: runtimeMs, runtimeMs, drawnMib: 8, memoryMib: 8, slowdown: latencyMs / runtimeMs };
}

function report(label: string, lifetimes: InstanceLifetime[], rows: TraceRow[]): TraceReport {
  return {
    experiment: "trace",
    label,
    url: "http://127.0.0.1:8970",
    accel: "tcg",
    traceDir: "/trace",
    day: 1,
    startMinute: 0,
    minutes: 2,
    scale: 1,
    seed: 7,
    historyMinutes: 0,
    sample: { size: 2, trials: 10, population: 40, score: { rate: 0.1, duration: 0.2, memory: 0.3, mean: 0.2 }, medianCandidateScore: 0.5 },
    deployment: { image: "trace_func", start: "reap", keepalivePolicy: label === "hybrid" ? "hybrid" : "fixed", keepaliveMs: 600_000, memMib: 1024, maxRuntimeMs: 10_000, maxMemoryMib: 128 },
    functions: [
      { name: "trace-00-aaaa", key: "app1/fn1", trigger: "http", invocations: 3, averageMs: 100, averageMb: 50 },
      { name: "trace-01-bbbb", key: "app2/fn2", trigger: "timer", invocations: 1, averageMs: 100, averageMb: 50 },
    ],
    startedAt: at(0),
    endedAt: at(120),
    timeoutMs: 120_000,
    lifetimes,
    rows,
  };
}

describe("trace replay results", () => {
  it("memory-time counts GiB-seconds within the run: a live instance until its end, one from before from its start", () => {
    expect(memoryTimeGibS([life("f", 10, 70)], T0, T0 + 120_000)).toBeCloseTo(60);
    expect(memoryTimeGibS([life("f", -30, 30, 512)], T0, T0 + 120_000)).toBeCloseTo(15);
    expect(memoryTimeGibS([life("f", 100, null, 2048)], T0, T0 + 120_000)).toBeCloseTo(40);
  });

  it("summarises cold-start share, starts and memory per function and overall", () => {
    const r = report("fixed-10m", [life("trace-00-aaaa", 0, 60), life("trace-01-bbbb", 50, null)], [
      row("trace-00-aaaa", 0, "prefetch", 400),
      row("trace-00-aaaa", 1, "warm", 110),
      row("trace-00-aaaa", 2, "warm", 120),
      row("trace-01-bbbb", 3, "boot", 5000),
    ]);
    const [all, first, second] = summarizeTrace(r);
    expect(all).toMatchObject({ function: "all", sent: 4, ok: 4, coldShare: 0.5, starts: { prefetch: 1, warm: 2, boot: 1 }, instances: 2 });
    expect(all!.memoryGibS).toBeCloseTo(60 + 70);
    expect(first).toMatchObject({ function: "trace-00-aaaa", coldShare: 1 / 3, p50Ms: 120 });
    expect(first!.slowdownP50).toBeCloseTo(1.2);
    expect(second).toMatchObject({ coldShare: 1, memoryGibS: 70 });
  });

  it("writes each keep-alive setting's rows and one report with the runs side by side and their charts", async () => {
    const out = await makeTempDir("trace-report");
    cleanups.push(() => out.remove());
    const rows = [row("trace-00-aaaa", 0, "prefetch", 400), row("trace-00-aaaa", 1, "warm", 110)];
    await writeResults(out.path, report("fixed-10m", [life("trace-00-aaaa", 0, 120)], rows));
    const written = await writeResults(out.path, report("hybrid", [life("trace-00-aaaa", 0, 30, 1024, true)], rows));
    expect(written.files.map((file) => file.slice(out.path.length + 1))).toEqual(["trace-hybrid.json", "trace-hybrid.csv", "report.md", "trace-tradeoff.svg", "trace-coldstarts.svg"]);
    const markdown = await readFile(join(out.path, "report.md"), "utf8");
    expect(markdown).toContain("## Trace replay");
    expect(markdown).toMatch(/\| fixed-10m \| 2 \| 0 \| 50\.0% \| prefetch 1, warm 1 \| 120 \|/);
    expect(markdown).toMatch(/\| hybrid \| 2 \| 0 \| 50\.0% \| prefetch 1, warm 1 \| 30 \| 1 \(1\) \|/);
    expect(markdown).toContain("Shahrad et al.");
    const csv = await readFile(join(out.path, "trace-fixed-10m.csv"), "utf8");
    expect(csv.split("\n")[0]).toBe("seq,function,dueMs,lagMs,latencyMs,status,start,instance,serverMs,queueMs,startMs,invokeMs,drawnMs,runtimeMs,drawnMib,memoryMib,slowdown,error");
    expect(await readFile(join(out.path, "trace-tradeoff.svg"), "utf8")).toContain("<svg");
  });
});
