/**
 * Pre-started VMMs with real QEMU: `vhive snapshot restore` in modes pool and pool-installed
 * (helloworld answers, no VMM start-up in the cold start, the idle memory measured, Ctrl-C leaves
 * nothing); a pooled restore serves the guest's memory intact and reseeds it; and the daemon's
 * pool of a function: filled at deploy, taken by cold starts, refilled, drained at scale to zero,
 * replaced on a new deployment, ended at shutdown, and given up when its working set is damaged.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { startDaemon, type Daemon } from "../../src/daemon/index.js";
import { buildImage, ImageStore, type StoredImage } from "../../src/image/index.js";
import { loadWorkingSet, pickEncoding } from "../../src/memory/index.js";
import { NoOpLog } from "../../src/shared/log.js";
import { StatePaths } from "../../src/shared/paths.js";
import { SnapshotStore, type StoredSnapshot } from "../../src/snapshot/index.js";
import { bootInstance, createSnapshot, restoreOnce, type Host, type RestoreResult } from "../../src/start/index.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { api, invokeGreeting, removeSnapshotsOf, uniqueName, waitScaledToZero } from "./daemon-harness.js";
import { expectNothingLeft, flipBytes, qemuProcessesOfTests, runCli, stateDir, testHost } from "./harness.js";

const cleanups = new Cleanups();
let host: Host;
let helloworld: StoredImage;
let snapshot: StoredSnapshot;

beforeAll(async () => {
  host = await testHost();
  helloworld = (await new ImageStore(new StatePaths(stateDir())).get(inject("helloworldId")))!;
  snapshot = await createSnapshot(host, helloworld);
  await restoreOnce(host, snapshot, undefined, { mode: "record" });
});
afterAll(() => new SnapshotStore(new StatePaths(stateDir())).remove(snapshot.meta.id));
afterEach(async () => {
  await cleanups.run();
  await expectNothingLeft();
});

/** Poll the function's pool of pre-started VMMs until `done` holds. */
async function waitForPool(base: string, fn: string, done: (pool: { ready: number; starting: number }) => boolean, timeoutMs = 60_000): Promise<{ ready: number; starting: number; heldMib: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { json } = await api(base, "GET", `/functions/${fn}`);
    if (json.pool && done(json.pool)) return json.pool;
    if (Date.now() > deadline) throw new Error(`${fn}'s pool is ${JSON.stringify(json.pool)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("vhive snapshot restore on a pooled VMM", () => {
  it("answers in modes pool and pool-installed with no VMM start-up in the cold start, and reports what the VMM held while it waited", async () => {
    const results: Record<string, RestoreResult> = {};
    for (const mode of ["pool", "pool-installed"] as const) {
      const run = await runCli(["snapshot", "restore", snapshot.meta.id, "--mode", mode, "--evict", "--json"]);
      expect(run.code, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout) as RestoreResult;
      results[mode] = result;
      expect(result).toMatchObject({ mode, text: "Hello, world!", snapshot: { id: snapshot.meta.id } });
      expect(result.breakdown.loadVmmMs).toBe(0);
      expect(result.breakdown.reseedMs).toBeGreaterThan(0);
      expect(result.pooled!.prestartMs).toBeGreaterThan(0);
      expect(result.pooled!.idle.qemuPssBytes).toBeGreaterThan(1 << 20);
      expect(result.pooled!.idle.pagerPssBytes).toBeGreaterThan(0);
      expect(result.wsPages).toBeGreaterThan(1000);
      // The working set of format 3 that prefetch reads by default: lz4 blocks, through the page cache.
      expect(result).toMatchObject({ wsCodec: "lz4", wsRead: "cached" });
      expect(result.wsDiskBytes).toBeGreaterThan(0);
      // The working set was prefetched: few faults, as prefetch.
      expect(result.faults).toBeLessThan(result.wsPages / 10);
    }
    // Only the cold start of pool reads the working set from disk; pool-installed's pager read
    // it while it waited, and at the cold start only serves the few lazy faults.
    expect(results.pool!.pagerBytesRead).toBeGreaterThanOrEqual(results.pool!.wsDiskBytes);
    expect(results["pool-installed"]!.pagerBytesRead).toBeLessThan(results["pool-installed"]!.wsDiskBytes / 2);
    // Installed while it waited: the working set's pages are in QEMU's idle PSS.
    const installedMore = results["pool-installed"]!.pooled!.idle.qemuPssBytes - results.pool!.pooled!.idle.qemuPssBytes;
    expect(installedMore).toBeGreaterThan(results.pool!.wsBytes / 2);

    const text = await runCli(["snapshot", "restore", snapshot.meta.id, "--mode", "pool"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^reply: Hello, world!$/m);
    expect(text.stdout).toMatch(/mode pool, under/);
    expect(text.stdout).toMatch(/^idle PSS\s+\S+ MiB\s+what the pooled VMM held while it waited: QEMU/m);
  });

  it("leaves nothing behind when Ctrl-C comes while the pooled VMM waits or restores", async () => {
    let interrupted = false;
    const run = await runCli(["--log-level", "debug", "snapshot", "restore", snapshot.meta.id, "--mode", "pool-installed"], {
      onStderr: (soFar, child) => {
        if (!interrupted && soFar.includes("qemu started")) {
          interrupted = true;
          child.kill("SIGINT");
        }
      },
    });
    expect(interrupted).toBe(true);
    expect(run.code, run.stderr).toBe(130);
    expect(run.stderr).toContain("ERR_ABORTED");
  });
});

describe("a pooled restore of the guest probe", () => {
  it("serves its memory intact (a boot's digest) and reseeds it (randomness of its own)", async () => {
    const probe = await buildImage(new StatePaths(stateDir()), "test/fixtures/guest-probe");
    const probeSnapshot = await createSnapshot(host, probe);
    cleanups.push(() => new SnapshotStore(new StatePaths(stateDir())).remove(probeSnapshot.meta.id));
    let booted: string;
    {
      await using instance = await bootInstance(host, probe);
      booted = (await instance.invoke("digest")).text;
    }
    await restoreOnce(host, probeSnapshot, "digest", { mode: "record" });
    const random = new Set<string>();
    for (const mode of ["pool", "pool-installed"] as const) {
      expect((await restoreOnce(host, probeSnapshot, "digest", { mode, evict: true })).text, mode).toBe(booted);
      for (let i = 0; i < 2; i++) random.add((await restoreOnce(host, probeSnapshot, "random", { mode })).text);
    }
    expect(random.size).toBe(4);
  });
});

describe("the daemon's pool of pre-started VMMs", () => {
  it("fills at deploy, serves cold starts, refills, drains at scale to zero, is replaced by a new deployment and ended at shutdown", async () => {
    const fn = uniqueName("pool");
    cleanups.push(() => removeSnapshotsOf(fn));
    let daemon: Daemon | undefined = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon?.close());
    const base = daemon.url;
    const spec = { image: helloworld.id, start: "reap", keepaliveMs: 2000, poolDepth: 1 };
    expect((await api(base, "PUT", `/functions/${fn}`, spec)).status).toBe(201);
    const invoke = (data: string) => invokeGreeting(base, fn, data);

    // No snapshot yet: nothing to pre-start. boot, then record; once the working set is
    // written, the pool fills; at zero it is drained.
    expect((await invoke("boot")).start).toBe("boot");
    await waitScaledToZero(base, fn);
    expect((await api(base, "GET", `/functions/${fn}`)).json.pool).toMatchObject({ depth: 1, ready: 0 });
    expect((await invoke("record")).start).toBe("record");
    const filled = await waitForPool(base, fn, (pool) => pool.ready === 1);
    expect(filled.heldMib).toBeGreaterThan(0);
    expect(filled.heldMib).toBeLessThan(256); // what it holds, not its guest size
    await waitScaledToZero(base, fn);
    await waitForPool(base, fn, (pool) => pool.ready === 0 && pool.starting === 0);
    expect(await qemuProcessesOfTests()).toEqual([]);

    // A new deployment fills its pool at once: its first cold start is pooled, then it refills.
    expect((await api(base, "PUT", `/functions/${fn}`, spec)).status).toBe(200);
    await waitForPool(base, fn, (pool) => pool.ready === 1);
    const pooled = await invoke("pooled");
    expect(pooled.start).toBe("pool");
    expect(pooled.breakdown).toMatchObject({ loadVmmMs: 0, restoreMs: expect.any(Number), reseedMs: expect.any(Number), connectMs: expect.any(Number) });
    await waitForPool(base, fn, (pool) => pool.ready === 1);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain(`vhive_invocations_total{function="${fn}",start="pool",status="ok"} 1`);
    expect(metrics).toContain(`vhive_pooled_vmms{function="${fn}",state="ready"} 1`);

    // Redeployed with the working set installed while they wait: the old VMM is ended.
    await waitScaledToZero(base, fn);
    expect((await api(base, "PUT", `/functions/${fn}`, { ...spec, poolInstalled: true })).status).toBe(200);
    const installed = await waitForPool(base, fn, (pool) => pool.ready === 1);
    expect(installed.heldMib).toBeGreaterThan(filled.heldMib); // it holds the working set too
    expect((await qemuProcessesOfTests()).length).toBe(1);
    expect((await invoke("installed")).start).toBe("pool-installed");
    await waitForPool(base, fn, (pool) => pool.ready === 1);

    // Shutdown with a full pool and an instance up: nothing is left.
    await daemon.close();
    daemon = undefined;
    expect(await qemuProcessesOfTests()).toEqual([]);
  });

  it("ends a pooled VMM whose working set turns out damaged, and serves the request on a new start", async () => {
    const fn = uniqueName("pooldmg");
    cleanups.push(() => removeSnapshotsOf(fn));
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    const base = daemon.url;
    const spec = { image: helloworld.id, start: "reap", keepaliveMs: 1000, poolDepth: 1 };
    expect((await api(base, "PUT", `/functions/${fn}`, spec)).status).toBe(201);
    const invoke = (data: string) => invokeGreeting(base, fn, data);
    await invoke("boot");
    await waitScaledToZero(base, fn);
    await invoke("record");
    await waitScaledToZero(base, fn);
    expect((await api(base, "PUT", `/functions/${fn}`, spec)).status).toBe(200);
    await waitForPool(base, fn, (pool) => pool.ready === 1);

    // The pooled VMM prefetches at the cold start: it reads the damage then.
    const [own] = (await new SnapshotStore(new StatePaths(stateDir())).list()).snapshots.filter((s) => s.meta.function === fn);
    // The encoding a prefetch reads by default; a flipped byte fails its block's checksum.
    const { pagesPath } = pickEncoding((await loadWorkingSet(own!))!)!;
    await flipBytes(pagesPath, 100);
    const served = await invoke("after damage");
    expect(served.start).toBe("record"); // the working set was moved aside and is recorded again
    const notes = (served.notes as string[] | undefined)?.join("; ") ?? "";
    expect(notes).toMatch(/a restore on pooled VMM \S+ failed/);
    expect(notes).toMatch(/the working set was moved aside/);
  });
});
