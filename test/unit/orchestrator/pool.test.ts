import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FunctionPool, MemoryBudget } from "../../../src/orchestrator/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { fakeFunction, FakeStarter } from "./fake-starter.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

let pools: FunctionPool[] = [];

function pool(starter: FakeStarter, overrides: Parameters<typeof fakeFunction>[0] = {}, budget = new MemoryBudget(4096), queueTimeoutMs = 10_000): FunctionPool {
  const created = new FunctionPool(fakeFunction(overrides), { starter, budget, log: new NoOpLog(), queueTimeoutMs });
  pools.push(created);
  return created;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
});

afterEach(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  pools = [];
  vi.useRealTimers();
});

describe("instance pool", () => {
  it("starts an instance for a request when none is idle, reports that start, and serves the next request warm", async () => {
    const starter = new FakeStarter();
    starter.kinds = ["record"];
    const p = pool(starter);
    const first = await p.invoke("a");
    expect(first).toMatchObject({ start: "record", text: "Hello, a!", instance: "hello-0" });
    expect(first.breakdown).toMatchObject({ startMs: 5, invokeMs: 1 });
    expect(first.breakdown.queueMs).toBeGreaterThanOrEqual(0);
    const second = await p.invoke("b");
    expect(second).toMatchObject({ start: "warm", instance: "hello-0" });
    expect(Object.keys(second.breakdown)).toEqual(["queueMs", "invokeMs"]);
    expect(starter.instances).toHaveLength(1);
  });

  it("gives each invocation the request's timeout, else the function's, else the daemon's", async () => {
    const starter = new FakeStarter();
    const daemonWide = new FunctionPool(fakeFunction(), { starter, budget: new MemoryBudget(4096), log: new NoOpLog(), invokeTimeoutMs: 45_000 });
    pools.push(daemonWide);
    await daemonWide.invoke("a");
    const deployed = pool(starter, { invokeTimeoutMs: 90_000 });
    await deployed.invoke("b");
    await deployed.invoke("c", { timeoutMs: 5000 });
    expect(starter.instances.flatMap((instance) => instance.timeoutsMs)).toEqual([45_000, 90_000, 5000]);
  });

  it("starts no more than maxInstances; further requests queue and are served in arrival order as instances free up", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const p = pool(starter, { maxInstances: 2 });
    const replies = ["r1", "r2", "r3", "r4"].map((data) => p.invoke(data));
    await ticks();
    expect(starter.instances).toHaveLength(2);
    expect(p.queueLength).toBe(2);
    const [one, two] = starter.instances;
    one!.release();
    await ticks();
    expect(p.queueLength).toBe(1);
    expect(one!.invocations).toEqual(["r1", "r3"]);
    two!.release();
    one!.release();
    await ticks();
    two!.release();
    const results = await Promise.all(replies);
    expect(results.map((r) => r.start)).toEqual(["boot", "boot", "warm", "warm"]);
    expect(starter.instances).toHaveLength(2);
  });

  it("a queued request fails with ERR_CAPACITY (503) after the queue timeout, saying max was reached", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const p = pool(starter, { maxInstances: 1 }, new MemoryBudget(4096), 5000);
    const first = p.invoke("a");
    await ticks();
    const second = p.invoke("b");
    const failed = expect(second).rejects.toMatchObject({ code: "ERR_CAPACITY", message: expect.stringContaining("no instance within 5 s: all 1 instances (max) stayed busy") });
    await vi.advanceTimersByTimeAsync(5001);
    await failed;
    starter.instances[0]!.release();
    await expect(first).resolves.toMatchObject({ start: "boot" });
  });

  it("with concurrency N one instance serves N requests at once", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const p = pool(starter, { maxInstances: 1, concurrency: 3 });
    const replies = [1, 2, 3].map((i) => p.invoke(String(i)));
    await ticks();
    expect(starter.instances).toHaveLength(1);
    expect(starter.instances[0]!.held).toBe(3);
    starter.instances[0]!.release();
    const results = await Promise.all(replies);
    expect(results.map((r) => r.start)).toEqual(["boot", "warm", "warm"]);
  });

  it("retires an instance idle for keepaliveMs (scale to zero); the next request starts a new one", async () => {
    const starter = new FakeStarter();
    starter.kinds = ["boot", "record", "prefetch"];
    const p = pool(starter, { keepaliveMs: 2000 });
    expect((await p.invoke("a")).start).toBe("boot");
    await vi.advanceTimersByTimeAsync(1999);
    expect(starter.instances[0]!.retired).toBe(false);
    expect((await p.invoke("b")).start).toBe("warm"); // resets the keep-alive
    await vi.advanceTimersByTimeAsync(1999);
    expect(starter.instances[0]!.retired).toBe(false);
    await vi.advanceTimersByTimeAsync(2);
    expect(starter.instances[0]!.retired).toBe(true);
    expect(p.instances()).toEqual([]);
    expect((await p.invoke("c")).start).toBe("record");
    await vi.advanceTimersByTimeAsync(2001);
    expect((await p.invoke("d")).start).toBe("prefetch");
  });

  it("starts minInstances at once and keeps them warm past keep-alive", async () => {
    const starter = new FakeStarter();
    const p = pool(starter, { minInstances: 1, keepaliveMs: 1000 });
    await ticks();
    expect(starter.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(starter.instances[0]!.retired).toBe(false);
    expect((await p.invoke("a")).start).toBe("warm");
    expect(p.instances()).toMatchObject([{ state: "idle", invocations: 1 }]);
  });

  it("admission: no instance starts beyond the memory budget; the request waits, and starts once another function frees memory", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const budget = new MemoryBudget(512);
    const a = pool(starter, { name: "a", memMib: 512, keepaliveMs: 1000 }, budget);
    const b = pool(starter, { name: "b", memMib: 256 }, budget);
    const first = a.invoke("x");
    await ticks();
    expect(budget.reservedMib).toBe(512);
    const second = b.invoke("y");
    await ticks();
    expect(starter.instances).toHaveLength(1);
    expect(b.queueLength).toBe(1);
    starter.instances[0]!.release();
    await first;
    await vi.advanceTimersByTimeAsync(1001); // a's instance retires, freeing 512 MiB
    await ticks();
    expect(starter.instances).toHaveLength(2);
    expect(budget.reservedMib).toBe(256);
    starter.instances[1]!.release();
    await expect(second).resolves.toMatchObject({ start: "boot", instance: "b-1" });
  });

  it("a request queued for memory gets ERR_CAPACITY naming the budget when none frees up in time", async () => {
    const starter = new FakeStarter();
    const p = pool(starter, { memMib: 1024 }, new MemoryBudget(512), 3000);
    const failed = expect(p.invoke("x")).rejects.toMatchObject({ code: "ERR_CAPACITY", message: expect.stringContaining("memory budget (0 of 512 MiB in use)") });
    await vi.advanceTimersByTimeAsync(3001);
    await failed;
    expect(starter.instances).toHaveLength(0);
  });

  it("an instance that dies mid-request fails it with ERR_INSTANCE_FAILED naming function and instance; the pool replaces it", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const budget = new MemoryBudget(4096);
    const p = pool(starter, {}, budget);
    const reply = p.invoke("x");
    await ticks();
    starter.instances[0]!.die();
    await expect(reply).rejects.toMatchObject({ code: "ERR_INSTANCE_FAILED", message: expect.stringMatching(/instance hello-0 of function hello died during the request: QEMU was killed/) });
    await ticks();
    expect(starter.instances[0]!.destroyed).toBe(true);
    expect(p.instances()).toEqual([]);
    expect(budget.reservedMib).toBe(0);
    starter.holdNew = false;
    await expect(p.invoke("y")).resolves.toMatchObject({ start: "boot", instance: "hello-1" });
  });

  it("a request whose instance died of a damaged snapshot is served again, once, by a new instance, saying so", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    starter.kinds = ["record", "boot"];
    const p = pool(starter);
    const reply = p.invoke("x");
    await ticks();
    starter.holdNew = false;
    starter.instances[0]!.die("snapshot s1: its memory file /s/mem is damaged at offset 8192 (0x2000): the page does not match its checksum", "ERR_SNAPSHOT_CORRUPT");
    const result = await reply;
    expect(result).toMatchObject({ start: "boot", instance: "hello-1", text: "Hello, x!" });
    expect(result.notes).toEqual([expect.stringMatching(/^instance hello-0 died serving this request: snapshot s1: its memory file \/s\/mem is damaged at offset 8192 .*served again by a new instance$/)]);
    expect(starter.instances[0]!.destroyed).toBe(true);

  });

  it("a request is served again at most once: a second death of damage fails it with ERR_INSTANCE_FAILED", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const p = pool(starter);
    const reply = p.invoke("x");
    await ticks();
    starter.instances[0]!.die("damaged", "ERR_SNAPSHOT_CORRUPT");
    await ticks();
    expect(starter.instances).toHaveLength(2);
    starter.instances[1]!.die("damaged again", "ERR_SNAPSHOT_CORRUPT");
    await expect(reply).rejects.toMatchObject({ code: "ERR_INSTANCE_FAILED", message: expect.stringContaining("instance hello-1 of function hello died during the request: damaged again") });
  });

  it("an idle instance that dies is dropped without a request noticing", async () => {
    const starter = new FakeStarter();
    const p = pool(starter);
    await p.invoke("a");
    starter.instances[0]!.die();
    await ticks();
    expect(p.instances()).toEqual([]);
    expect((await p.invoke("b")).instance).toBe("hello-1");
  });

  it("a start that fails fails its request with the start's error and frees its memory; the next request starts again", async () => {
    const starter = new FakeStarter();
    const budget = new MemoryBudget(4096);
    const p = pool(starter, {}, budget);
    starter.failNext = new VhiveError("ERR_READY_TIMEOUT", "hello did not answer on port 50051 in time");
    await expect(p.invoke("a")).rejects.toMatchObject({ code: "ERR_READY_TIMEOUT" });
    expect(budget.reservedMib).toBe(0);
    await expect(p.invoke("b")).resolves.toMatchObject({ start: "boot" });
  });

  it("a function error is passed through and leaves the instance in the pool", async () => {
    const starter = new FakeStarter();
    const p = pool(starter);
    await expect(p.invoke("bad")).rejects.toMatchObject({ code: "ERR_INVOKE" });
    expect(p.instances()).toMatchObject([{ state: "idle" }]);
  });

  it("close fails queued requests with ERR_SHUTTING_DOWN, lets in-flight ones finish, then retires every instance", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const p = pool(starter, { maxInstances: 1 });
    const inflight = p.invoke("a");
    await ticks();
    const queued = p.invoke("b");
    const queuedFails = expect(queued).rejects.toMatchObject({ code: "ERR_SHUTTING_DOWN" });
    const closed = p.close();
    await queuedFails;
    await ticks();
    expect(starter.instances[0]!.retired).toBe(false);
    starter.instances[0]!.release();
    await expect(inflight).resolves.toMatchObject({ text: "Hello, a!" });
    await closed;
    expect(starter.instances[0]!.retired).toBe(true);
    await expect(p.invoke("c")).rejects.toMatchObject({ code: "ERR_SHUTTING_DOWN" });
  });
});
