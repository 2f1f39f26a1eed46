import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Functions, MemoryBudget } from "../../../src/orchestrator/index.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Store } from "../../../src/store/index.js";
import { Cleanups } from "../test-shared/cleanups.js";
import { FakeStarter } from "./fake-starter.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

function functions(store: Store, starter: FakeStarter): Functions {
  const created = new Functions({
    store,
    starter,
    budget: new MemoryBudget(4096),
    images: { resolve: async () => ({ id: "c".repeat(64), name: "helloworld", memMib: 512 }) },
    log: new NoOpLog(),
  });
  cleanups.push(() => created.destroy());
  return created;
}

describe("function registry", () => {
  it("functions deployed before a restart are loaded again, with their pools and their minimum instances", async () => {
    const dir = await makeTempDir("functions");
    cleanups.push(() => dir.remove());
    const path = join(dir.path, "vhive.db");
    const store = Store.open(path);
    const before = functions(store, new FakeStarter());
    await before.deploy("hello", { image: "helloworld", start: "vanilla" }, "upsert");
    await before.deploy("warm", { image: "helloworld", minInstances: 1 }, "upsert");
    await before.invoke("hello", "x");
    await before.destroy(); // as if killed: nothing is retired gracefully
    store.close();

    const reopened = Store.open(path);
    cleanups.push(() => reopened.close());
    const starter = new FakeStarter();
    const after = functions(reopened, starter);
    expect(after.load().map((fn) => [fn.name, fn.start, fn.memMib])).toEqual([
      ["hello", "vanilla", 512],
      ["warm", "reap", 512],
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(after.instances().map((instance) => instance.function)).toEqual(["warm"]);
    expect((await after.invoke("hello", "y")).text).toBe("Hello, y!");
    expect(after.invocations("hello").map((record) => record.start)).toEqual(["boot", "boot"]);
  });

  it("minInstances above maxInstances is refused naming both", async () => {
    const store = Store.open(":memory:");
    cleanups.push(() => store.close());
    await expect(functions(store, new FakeStarter()).deploy("x", { image: "helloworld", minInstances: 3, maxInstances: 2 }, "upsert")).rejects.toMatchObject({
      code: "ERR_VALIDATION",
      message: "minInstances (3) is more than maxInstances (2)",
    });
  });
});
