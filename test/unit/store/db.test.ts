import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Store } from "../../../src/store/index.js";
import { fakeFunction } from "../orchestrator/fake-starter.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe("the daemon's store", () => {
  it("functions and invocation records survive closing and reopening the database", async () => {
    const dir = await makeTempDir("store");
    cleanups.push(() => dir.remove());
    const path = join(dir.path, "vhive.db");
    const store = Store.open(path);
    store.putFunction(fakeFunction({ name: "hello" }));
    store.putFunction(fakeFunction({ name: "other", start: "boot" }));
    store.putFunction(fakeFunction({ name: "hello", keepaliveMs: 5000 }));
    store.addInvocation({ function: "hello", instance: "vm1", start: "boot", status: "ok", errorCode: null, errorMessage: null, totalMs: 7000.5, breakdown: { kernelBootMs: 2400 }, at: "2026-01-01T00:00:00Z" });
    store.addInvocation({ function: "hello", instance: null, start: null, status: "error", errorCode: "ERR_CAPACITY", errorMessage: "full", totalMs: 3, breakdown: {}, at: "2026-01-01T00:00:01Z" });
    store.close();
    store.close(); // idempotent

    const reopened = Store.open(path);
    expect(reopened.listFunctions().map((fn) => [fn.name, fn.keepaliveMs, fn.start])).toEqual([
      ["hello", 5000, "reap"],
      ["other", 2000, "boot"],
    ]);
    expect(reopened.invocations("hello")).toMatchObject([
      { id: 1, start: "boot", status: "ok", totalMs: 7000.5, breakdown: { kernelBootMs: 2400 } },
      { id: 2, start: null, status: "error", errorCode: "ERR_CAPACITY" },
    ]);
    expect(reopened.invocations("hello", 1).map((record) => record.id)).toEqual([2]);
    expect(reopened.deleteFunction("other")).toBe(true);
    expect(reopened.deleteFunction("other")).toBe(false);
    expect(reopened.getFunction("other")).toBeUndefined();
    reopened.close();
  });

  it("a store used after close throws ERR_DISPOSED", () => {
    const store = Store.open(":memory:");
    store.close();
    expect(() => store.listFunctions()).toThrow(expect.objectContaining({ code: "ERR_DISPOSED" }));
  });

  it("a database that cannot be opened is ERR_STORE naming the file", () => {
    expect(() => Store.open("/proc/no-such-dir/vhive.db")).toThrow(expect.objectContaining({ code: "ERR_STORE", message: expect.stringContaining("/proc/no-such-dir/vhive.db") }));
  });
});
