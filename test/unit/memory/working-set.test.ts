import { readFile, writeFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commitWorkingSet, loadWorkingSet, moveWorkingSetAside, readOffsets, removeWorkingSet, workingSetPaths } from "../../../src/memory/index.js";
import type { StoredSnapshot } from "../../../src/snapshot/index.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { indexFile, traceFile } from "../test-shared/ws-index.js";

let dir: TempDir;
let snapshot: StoredSnapshot;

beforeEach(async () => {
  dir = await makeTempDir("ws-test");
  snapshot = { dir: dir.path, memPath: `${dir.path}/mem`, statePath: `${dir.path}/state`, meta: { id: "abc123" } } as StoredSnapshot;
});
afterEach(() => dir.remove());

async function writeWorkingSet(pages: number): Promise<void> {
  const paths = workingSetPaths(snapshot);
  await writeFile(paths.pagesPath, Buffer.alloc(pages * 4096));
  await writeFile(paths.indexPath, indexFile(Array.from({ length: pages }, (_, i) => i * 4096)));
}

describe("working sets", () => {
  it("a snapshot without ws.json has no working set", async () => {
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
  });

  it("loads what was committed, and forgets it when removed", async () => {
    await writeWorkingSet(3);
    await commitWorkingSet(snapshot, { pages: 3, bytes: 3 * 4096, pageSize: 4096, input: "A" });
    expect((await loadWorkingSet(snapshot))?.meta).toMatchObject({ snapshotId: "abc123", pages: 3, input: "A" });
    await removeWorkingSet(snapshot);
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
  });

  it("a truncated ws.pages is refused naming the file, with a remedy", async () => {
    await writeWorkingSet(3);
    await commitWorkingSet(snapshot, { pages: 3, bytes: 3 * 4096, pageSize: 4096, input: "A" });
    await writeFile(workingSetPaths(snapshot).pagesPath, Buffer.alloc(4096));
    await expect(loadWorkingSet(snapshot)).rejects.toMatchObject({
      code: "ERR_SNAPSHOT_CORRUPT",
      message: expect.stringMatching(/ws\.pages is damaged: it is 4096 bytes, expected 12288/),
      remedy: expect.stringContaining("--mode record"),
    });
  });

  it("a ws.json of another snapshot is refused", async () => {
    await writeWorkingSet(1);
    await commitWorkingSet(snapshot, { pages: 1, bytes: 4096, pageSize: 4096, input: "A" });
    await expect(loadWorkingSet({ ...snapshot, meta: { ...snapshot.meta, id: "other" } })).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT" });
  });

  it("reads the offsets of a trace in order", async () => {
    await writeFile(`${dir.path}/trace`, traceFile([8192, 0, 4096 * 40]));
    expect(await readOffsets(`${dir.path}/trace`)).toEqual([8192n, 0n, 163840n]);
    await writeFile(`${dir.path}/ws.index`, indexFile([0, 8192, 4096 * 40]));
    expect(await readOffsets(`${dir.path}/ws.index`)).toEqual([0n, 8192n, 163840n]);
    await writeFile(`${dir.path}/bad`, "not an index at all, not at all");
    await expect(readOffsets(`${dir.path}/bad`)).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT" });
  });
});

describe("a working set found damaged", () => {
  it("is moved aside with why, so the next REAP start records a new one", async () => {
    await writeWorkingSet(2);
    const ws = await commitWorkingSet(snapshot, { pages: 2, bytes: 2 * 4096, pageSize: 4096, input: "A" });
    const dest = await moveWorkingSetAside(snapshot, ws.meta.recordedAt, "ws.pages at offset 4096 does not match");
    expect(dest).toMatch(/damaged\/ws-/);
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
    expect(JSON.parse(await readFile(`${dest}/why.json`, "utf8"))).toMatchObject({ reason: "ws.pages at offset 4096 does not match" });
    expect((await readFile(`${dest}/ws.pages`)).length).toBe(2 * 4096);
  });

  it("is left alone if a newer one was recorded since", async () => {
    await writeWorkingSet(1);
    await commitWorkingSet(snapshot, { pages: 1, bytes: 4096, pageSize: 4096, input: "A" });
    expect(await moveWorkingSetAside(snapshot, "2000-01-01T00:00:00.000Z", "old damage")).toBeUndefined();
    expect(await loadWorkingSet(snapshot)).toBeDefined();
  });

  it("of the older format without checksums counts as absent", async () => {
    await writeWorkingSet(1);
    await writeFile(workingSetPaths(snapshot).metaPath, JSON.stringify({ format: 1, snapshotId: "abc123", pages: 1, bytes: 4096, pageSize: 4096, recordedAt: "x", input: "A" }));
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
  });
});
