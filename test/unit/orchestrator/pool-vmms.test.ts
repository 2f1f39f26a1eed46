/** A function's pool of pre-started VMMs in its instance pool and the registry, with a fake starter: no VM. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FunctionPool, Functions, MemoryBudget } from "../../../src/orchestrator/index.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { Store } from "../../../src/store/index.js";
import { rejection } from "../invoke/fixtures.js";
import { fakeFunction, FakeStarter } from "./fake-starter.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));
async function ticks(n = 8): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

let pools: FunctionPool[] = [];

function pool(starter: FakeStarter, overrides: Parameters<typeof fakeFunction>[0] = {}, budget = new MemoryBudget(4096)): FunctionPool {
  const created = new FunctionPool(fakeFunction({ poolDepth: 1, ...overrides }), { starter, budget, log: new NoOpLog() });
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

describe("pre-started VMMs of a function", () => {
  it("fill when the function is deployed; a cold start takes one, reports it, and the pool refills once that start is done", async () => {
    const starter = new FakeStarter();
    const budget = new MemoryBudget(4096);
    const p = pool(starter, { poolDepth: 2 }, budget);
    await ticks();
    expect(starter.vmms).toHaveLength(2);
    expect(p.vmmPool()).toEqual({ depth: 2, ready: 2, starting: 0, heldMib: 80, installed: false });
    expect(budget.reservedMib).toBe(80);

    starter.gate = true;
    const reply = p.invoke("a");
    await ticks();
    expect(starter.vmms[0]!.taken).toBe(true);
    expect(starter.vmms).toHaveLength(2); // no refill while the start runs
    expect(budget.reservedMib).toBe(256 + 40); // the instance's memory, and the VMM still pooled
    starter.proceed();
    expect(await reply).toMatchObject({ start: "pool", text: "Hello, a!" });
    await ticks();
    expect(starter.vmms).toHaveLength(3);
    expect(p.vmmPool()).toMatchObject({ ready: 2, starting: 0 });
  });

  it("reports pool-installed for a deployment whose VMMs hold the working set", async () => {
    const starter = new FakeStarter();
    const p = pool(starter, { poolInstalled: true });
    await ticks();
    expect(p.vmmPool()).toMatchObject({ installed: true, ready: 1 });
    expect(await p.invoke("a")).toMatchObject({ start: "pool-installed" });
  });

  it("are drained when the function scales to zero, and refilled by its next start", async () => {
    const starter = new FakeStarter();
    const budget = new MemoryBudget(4096);
    const p = pool(starter, { keepaliveMs: 2000 }, budget);
    await ticks();
    await p.invoke("a"); // takes vmm 0, refills vmm 1
    await ticks();
    expect(p.vmmPool()).toMatchObject({ ready: 1 });
    await vi.advanceTimersByTimeAsync(2000);
    await ticks();
    expect(starter.instances[0]!.retired).toBe(true);
    expect(starter.vmms[1]!.destroyed).toBe(true);
    expect(p.vmmPool()).toMatchObject({ ready: 0, starting: 0, heldMib: 0 });
    expect(budget.reservedMib).toBe(0);
    expect(starter.vmms).toHaveLength(2); // nothing pre-started while at zero

    expect(await p.invoke("b")).toMatchObject({ start: "boot" }); // the pool was empty
    await ticks();
    expect(starter.vmms).toHaveLength(3);
    expect(p.vmmPool()).toMatchObject({ ready: 1 });
  });

  it("are kept while instances are up, and serve a burst's cold starts", async () => {
    const starter = new FakeStarter();
    starter.holdNew = true;
    const p = pool(starter, { maxInstances: 3, poolDepth: 2 });
    await ticks();
    const replies = [p.invoke("a"), p.invoke("b"), p.invoke("c")];
    await ticks();
    expect(starter.instances.map((instance) => instance.started.kind)).toEqual(["pool", "pool", "boot"]);
    for (const instance of starter.instances) instance.release();
    await Promise.all(replies);
  });

  it("are not pre-started while there is nothing to pre-start, until a start asks again", async () => {
    const starter = new FakeStarter();
    starter.nothingToPrestart = true;
    const p = pool(starter);
    await ticks();
    expect(p.vmmPool()).toMatchObject({ ready: 0, starting: 0 });
    starter.nothingToPrestart = false;
    expect(await p.invoke("a")).toMatchObject({ start: "boot" });
    await ticks();
    expect(p.vmmPool()).toMatchObject({ ready: 1 });
  });

  it("give their memory back to a start that does not fit the budget otherwise", async () => {
    const starter = new FakeStarter();
    const budget = new MemoryBudget(300);
    const other = pool(starter, { name: "other", poolDepth: 1, memMib: 256 }, budget);
    await ticks();
    expect(other.vmmPool()).toMatchObject({ ready: 1, heldMib: 40 });
    const p = pool(starter, { name: "hello", poolDepth: 0, memMib: 280 }, budget);
    expect(await p.invoke("a")).toMatchObject({ start: "boot" });
    expect(starter.vmms[0]!.destroyed).toBe(true);
    expect(other.vmmPool()).toMatchObject({ ready: 0, heldMib: 0 });
    expect(budget.reservedMib).toBe(280);
  });

  it("are all ended by close() and destroy(), a pre-start under way too", async () => {
    const starter = new FakeStarter();
    const budget = new MemoryBudget(4096);
    const closing = pool(starter, { poolDepth: 2 }, budget);
    await ticks();
    starter.prestartGate = true;
    await closing.invoke("a");
    await ticks();
    expect(starter.pendingPrestarts).toBe(1);
    const closed = closing.close();
    starter.proceedPrestarts();
    await closed;
    expect(starter.vmms.map((vmm) => vmm.taken || vmm.destroyed)).toEqual([true, true]);
    expect(closing.vmmPool()).toMatchObject({ ready: 0, starting: 0 });
    expect(budget.reservedMib).toBe(0);

    starter.prestartGate = false;
    const destroyed = pool(starter, { name: "gone", poolDepth: 2 }, budget);
    await ticks();
    await destroyed.destroy();
    expect(starter.vmms.slice(2).map((vmm) => vmm.destroyed)).toEqual([true, true]);
    expect(budget.reservedMib).toBe(0);
  });

  it("are dropped when one dies while it waits, its memory given back", async () => {
    const starter = new FakeStarter();
    const budget = new MemoryBudget(4096);
    const p = pool(starter, {}, budget);
    await ticks();
    starter.vmms[0]!.die();
    await ticks();
    expect(starter.vmms[0]!.destroyed).toBe(true);
    expect(p.vmmPool()).toMatchObject({ ready: 0, heldMib: 0 });
    expect(budget.reservedMib).toBe(0);
  });
});

describe("deploying with a pool", () => {
  function registry(starter: FakeStarter): Functions {
    const store = Store.open(":memory:");
    const functions = new Functions({ store, starter, budget: new MemoryBudget(4096), images: { resolve: async () => ({ id: "c".repeat(64), name: "helloworld", memMib: undefined }) }, log: new NoOpLog() });
    return functions;
  }

  it("a new version drains the old version's VMMs and fills its own", async () => {
    const starter = new FakeStarter();
    const functions = registry(starter);
    try {
      await functions.deploy("hello", { image: "helloworld", poolDepth: 1 }, "upsert");
      await ticks();
      expect(functions.vmmPool("hello")).toMatchObject({ ready: 1 });
      await functions.deploy("hello", { image: "helloworld", poolDepth: 1, poolInstalled: true }, "upsert");
      await ticks();
      expect(starter.vmms.map((vmm) => vmm.destroyed)).toEqual([true, false]);
      expect(functions.vmmPool("hello")).toMatchObject({ ready: 1, installed: true });
      await functions.remove("hello");
      expect(starter.vmms[1]!.destroyed).toBe(true);
    } finally {
      await functions.destroy();
    }
  });

  it("refuses a pool for a start policy other than reap, and pool-installed without a pool", async () => {
    const functions = registry(new FakeStarter());
    try {
      const vanilla = await rejection(functions.deploy("hello", { image: "helloworld", start: "vanilla", poolDepth: 2 }, "upsert"));
      expect(vanilla).toMatchObject({ code: "ERR_VALIDATION" });
      expect(vanilla.message).toContain("needs start reap");
      const installed = await rejection(functions.deploy("hello", { image: "helloworld", poolInstalled: true }, "upsert"));
      expect(installed).toMatchObject({ code: "ERR_VALIDATION" });
      expect(installed.remedy).toContain("--pool N");
      expect(functions.list()).toEqual([]);
    } finally {
      await functions.destroy();
    }
  });
});
