import { join } from "node:path";
import Database from "better-sqlite3";
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
    store.addInvocation({ function: "hello", instance: "vm2", start: "record", status: "ok", errorCode: null, errorMessage: null, totalMs: 900, breakdown: {}, at: "2026-01-01T00:00:02Z", note: "the working set was moved aside" });
    store.close();
    store.close(); // idempotent

    const reopened = Store.open(path);
    expect(reopened.listFunctions().map((fn) => [fn.name, fn.keepaliveMs, fn.start])).toEqual([
      ["hello", 5000, "reap"],
      ["other", 2000, "boot"],
    ]);
    expect(reopened.invocations("hello")).toMatchObject([
      { id: 1, start: "boot", status: "ok", totalMs: 7000.5, breakdown: { kernelBootMs: 2400 }, note: null },
      { id: 2, start: null, status: "error", errorCode: "ERR_CAPACITY" },
      { id: 3, start: "record", note: "the working set was moved aside" },
    ]);
    expect(reopened.invocations("hello", 1).map((record) => record.id)).toEqual([3]);
    expect(reopened.deleteFunction("other")).toBe(true);
    expect(reopened.deleteFunction("other")).toBe(false);
    expect(reopened.getFunction("other")).toBeUndefined();
    reopened.close();
  });

  it("a database from before keep-alive policies opens with its functions kept, each under the fixed policy", async () => {
    const dir = await makeTempDir("store");
    cleanups.push(() => dir.remove());
    const path = join(dir.path, "vhive.db");
    // The schema as vhive wrote it before migrations (user_version 0), with one function in it.
    const old = new Database(path);
    old.exec("CREATE TABLE functions (name TEXT PRIMARY KEY, record TEXT NOT NULL, updated_at TEXT NOT NULL)");
    const { keepalivePolicy: _none, ...record } = fakeFunction({ name: "legacy", keepaliveMs: 9000 });
    old.prepare("INSERT INTO functions VALUES (?, ?, ?)").run("legacy", JSON.stringify(record), record.updatedAt);
    old.close();

    const store = Store.open(path);
    expect(store.getFunction("legacy")).toMatchObject({ name: "legacy", keepaliveMs: 9000, keepalivePolicy: "fixed" });
    // Every migration ran: invocations can carry a note now.
    store.addInvocation({ function: "legacy", instance: null, start: "warm", status: "ok", errorCode: null, errorMessage: null, totalMs: 1, breakdown: {}, at: "2026-01-01T00:00:00Z", note: "x" });
    expect(store.invocations("legacy")[0]!.note).toBe("x");
    store.putFunction(fakeFunction({ name: "learner", keepalivePolicy: "hybrid" }));
    store.close();
    // Opening again runs no migration twice.
    const again = Store.open(path);
    expect(again.listFunctions().map((fn) => [fn.name, fn.keepalivePolicy])).toEqual([
      ["learner", "hybrid"],
      ["legacy", "fixed"],
    ]);
    again.close();
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
