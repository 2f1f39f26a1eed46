import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FunctionPool, LifetimeLog, MemoryBudget } from "../../../src/orchestrator/index.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { fakeFunction, FakeStarter } from "./fake-starter.js";

const MINUTE = 60_000;
const tick = () => new Promise((resolve) => setImmediate(resolve));
async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

let pools: FunctionPool[] = [];

function pool(starter: FakeStarter, overrides: Parameters<typeof fakeFunction>[0], lifetimes = new LifetimeLog(), idleHistoryMs?: number[]): FunctionPool {
  const created = new FunctionPool(fakeFunction(overrides), { starter, budget: new MemoryBudget(4096), log: new NoOpLog(), lifetimes, idleHistoryMs });
  pools.push(created);
  return created;
}

beforeEach(() => {
  // performance.now() too: the pool measures idle times with it.
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance", "Date"] });
});

afterEach(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  pools = [];
  vi.useRealTimers();
});

/** A request every `gapMs` (after the previous one answered), `count` times. */
async function periodic(p: FunctionPool, gapMs: number, count: number): Promise<string[]> {
  const starts: string[] = [];
  for (let i = 0; i < count; i++) {
    starts.push((await p.invoke("x")).start);
    await vi.advanceTimersByTimeAsync(gapMs);
  }
  return starts;
}

describe("the pool under a keep-alive policy", () => {
  it("under fixed keep-alive a function called every 10 minutes with a 5-minute keep-alive starts cold every time", async () => {
    const starter = new FakeStarter();
    const p = pool(starter, { keepalivePolicy: "fixed", keepaliveMs: 5 * MINUTE });
    const starts = await periodic(p, 10 * MINUTE, 12);
    expect(starts.every((start) => start === "boot")).toBe(true);
    expect(p.keepalive()).toEqual({ policy: "fixed", keepaliveMs: 5 * MINUTE });
  });

  it("under hybrid the same function is pre-warmed ahead of each request once the policy has learnt its idle times", async () => {
    const starter = new FakeStarter();
    const lifetimes = new LifetimeLog();
    const p = pool(starter, { keepalivePolicy: "hybrid", keepaliveMs: 5 * MINUTE }, lifetimes);
    const starts = await periodic(p, 10 * MINUTE, 30);
    // The first request starts cold; while the histogram has too few idle times the instance is
    // kept (standard keep-alive, 4 h), so the next ones are warm; then it is unloaded after each
    // request and pre-warmed 9 minutes later: every request is warm.
    expect(starts[0]).toBe("boot");
    expect(starts.slice(1)).toEqual(Array(29).fill("warm"));
    expect(p.keepalive()).toMatchObject({ policy: "hybrid", last: { rule: "histogram", prewarmMs: 9 * MINUTE } });
    const records = lifetimes.list();
    expect(records.filter((r) => r.prewarmed).length).toBeGreaterThan(15);
    // An unloaded instance holds no memory: the function's instances were alive for far less
    // than the 290 minutes of the run (each pre-warmed one lives about a minute before its request).
    const aliveMs = records.reduce((sum, r) => sum + ((r.endedAt ? Date.parse(r.endedAt) : Date.now()) - Date.parse(r.startedAt)), 0);
    expect(aliveMs).toBeLessThan(150 * MINUTE);
    expect(records.every((r) => r.memMib === 256 && r.function === "hello")).toBe(true);
  });

  it("a policy given the function's past idle times pre-warms from the first idle period on", async () => {
    const starter = new FakeStarter();
    const p = pool(starter, { keepalivePolicy: "hybrid" }, new LifetimeLog(), Array(50).fill(10 * MINUTE + 2000));
    const starts = await periodic(p, 10 * MINUTE, 3);
    expect(starts).toEqual(["boot", "warm", "warm"]);
    expect(p.keepalive()).toMatchObject({ idleTimes: 52, last: { rule: "histogram" } });
    // Unloaded after each request: every instance after the first was pre-warmed (the fourth
    // for a request that has not come yet).
    expect(starter.instances.length).toBe(4);
  });

  it("a request that arrives before the pre-warm starts its own instance, and the pending pre-warm is dropped", async () => {
    const starter = new FakeStarter();
    const p = pool(starter, { keepalivePolicy: "hybrid" });
    // Enough history that one early request (below 5% of the idle times) leaves the head at 10 minutes.
    await periodic(p, 10 * MINUTE, 40);
    const before = starter.instances.length;
    await p.invoke("x"); // this one's instance is unloaded at once: a pre-warm is pending for 9 minutes on
    await vi.advanceTimersByTimeAsync(MINUTE);
    const early = await p.invoke("x");
    expect(early.start).toBe("boot");
    await vi.advanceTimersByTimeAsync(MINUTE);
    // Idle again after the early request: the new decision pre-warms in 9 minutes; the old one (in 7) is gone.
    await vi.advanceTimersByTimeAsync(7 * MINUTE + 1000);
    expect(starter.instances.length).toBe(before + 1);
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(starter.instances.length).toBe(before + 2);
  });

  it("records each instance's life: when it started, came up and ended, and how", async () => {
    const starter = new FakeStarter();
    starter.kinds = ["record"];
    const lifetimes = new LifetimeLog();
    const p = pool(starter, { keepalivePolicy: "fixed", keepaliveMs: 2000 }, lifetimes);
    await p.invoke("a");
    expect(lifetimes.list()).toMatchObject([{ instance: "hello-0", start: "record", endedAt: null, prewarmed: false, memMib: 256 }]);
    await vi.advanceTimersByTimeAsync(2500);
    await ticks();
    const [ended] = lifetimes.list();
    expect(Date.parse(ended!.endedAt!) - Date.parse(ended!.startedAt)).toBeGreaterThanOrEqual(2000);
    expect(ended!.readyAt).not.toBeNull();
  });
});
