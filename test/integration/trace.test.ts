/**
 * A trace replay end to end: a small trace generated in the Azure Functions trace's format
 * (three functions, two minutes, rates a 2-core TCG host can serve), `vhive bench trace`
 * against a real daemon with real microVMs of the trace function, its rows and report.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeAzureTrace, type TraceFileFunction } from "../../src/bench/trace/write.js";
import { startDaemon } from "../../src/daemon/index.js";
import { buildImage } from "../../src/image/index.js";
import { NoOpLog } from "../../src/shared/log.js";
import { StatePaths } from "../../src/shared/paths.js";
import { makeTempDir } from "../../src/shared/tmp.js";
import { SnapshotStore } from "../../src/snapshot/index.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { expectNothingLeft, runCli, stateDir } from "./harness.js";

const cleanups = new Cleanups();
afterEach(async () => {
  await cleanups.run();
  await expectNothingLeft();
});

const traceFunction = (id: string, counts: number[], medianMs: number, mb: number): TraceFileFunction => ({
  owner: "o1",
  app: `app${id}`,
  fn: `fn${id}`,
  trigger: "http",
  counts,
  durationMs: [medianMs / 2, medianMs / 2, medianMs, medianMs, medianMs * 1.5, medianMs * 2, medianMs * 2],
  memoryMb: [mb, mb, mb, mb, mb, mb, mb, mb],
});

describe("vhive bench trace", () => {
  it("replays a generated trace through the daemon: every request answered, cold and warm starts, memory-time, rows and report", async () => {
    const image = await buildImage(new StatePaths(stateDir()), "functions/trace_func");
    const prefix = `tr${Date.now().toString(36)}`;
    cleanups.push(async () => {
      const store = new SnapshotStore(new StatePaths(stateDir()));
      for (const snapshot of (await store.list()).snapshots.filter((s) => s.meta.function.startsWith(prefix))) await store.remove(snapshot.meta.id);
    });
    const traceDir = await makeTempDir("trace-files");
    cleanups.push(() => traceDir.remove());
    // Busy (every few seconds), once a minute, and a burst in the first minute only.
    await writeAzureTrace(traceDir.path, 1, [traceFunction("0a", [6, 6], 80, 24), traceFunction("1b", [1, 1], 200, 40), traceFunction("2c", [3, 0], 50, 8)]);
    const out = await makeTempDir("trace-out");
    cleanups.push(() => out.remove());
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());

    const result = await runCli(
      ["bench", "trace", "--trace", traceDir.path, "--functions", "3", "--minutes", "2", "--keepalive", "20s", "--seed", "1", "--trials", "10", "--no-prepare", "--prefix", prefix, "--image", image.id, "--out", out.path, "--json"],
      { env: { ...process.env, VHIVE_URL: daemon.url } },
    );
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ experiment: "trace", label: "fixed-20s", minutes: 2, deployment: { keepalivePolicy: "fixed", keepaliveMs: 20_000 } });
    expect(report.functions).toHaveLength(3);
    // 6 + 6 + 1 + 1 + 3 + 0 invocations, scale 1.
    expect(report.rows).toHaveLength(17);
    const errors = report.rows.filter((row: { status: string }) => row.status !== "ok");
    expect(errors, JSON.stringify(errors)).toEqual([]);
    // The trace function ran for the time each request asked: no reply came sooner.
    for (const row of report.rows) expect(row.latencyMs).toBeGreaterThanOrEqual(row.runtimeMs);
    const [all] = report.summary;
    expect(all.starts.boot).toBeGreaterThanOrEqual(3);
    expect(all.starts.warm).toBeGreaterThan(0);
    expect(all.coldShare).toBeGreaterThan(0);
    expect(all.coldShare).toBeLessThan(1);
    // Memory-time: more than nothing, at most every instance's 256 MiB for the whole run (a busy
    // function gets more than one instance while its first starts).
    const runS = (Date.parse(report.endedAt) - Date.parse(report.startedAt)) / 1000;
    expect(all.instances).toBeGreaterThanOrEqual(3);
    expect(all.memoryGibS).toBeGreaterThan(0);
    expect(all.memoryGibS).toBeLessThanOrEqual(all.instances * 0.25 * runS);
    console.log(`trace replay: ${all.sent} requests, starts ${JSON.stringify(all.starts)}, cold ${(all.coldShare * 100).toFixed(1)}%, ${all.instances} instances, ${all.memoryGibS.toFixed(1)} GiB-s over ${runS.toFixed(0)} s`);

    const markdown = await readFile(join(out.path, "report.md"), "utf8");
    expect(markdown).toContain("## Trace replay");
    expect(markdown).toContain("| fixed-20s | 17 | 0 |");
    expect((await readFile(join(out.path, "trace-fixed-20s.csv"), "utf8")).trim().split("\n")).toHaveLength(18);
    // The run removed what it deployed.
    const listed = (await (await fetch(`${daemon.url}/functions`)).json()) as { functions: { name: string }[] };
    expect(listed.functions.filter((fn) => fn.name.startsWith(prefix))).toEqual([]);
  });
});
