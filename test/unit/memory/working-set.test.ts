import { writeFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commitWorkingSet, loadWorkingSet, readOffsets, removeWorkingSet, workingSetPaths } from "../../../src/memory/index.js";
import type { StoredSnapshot } from "../../../src/snapshot/index.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { indexFile } from "../test-shared/ws-index.js";

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
      message: expect.stringContaining("ws.pages is 4096 bytes, expected 12288"),
      remedy: expect.stringContaining("--mode record"),
    });
  });

  it("a ws.json of another snapshot is refused", async () => {
    await writeWorkingSet(1);
    await commitWorkingSet(snapshot, { pages: 1, bytes: 4096, pageSize: 4096, input: "A" });
    await expect(loadWorkingSet({ ...snapshot, meta: { ...snapshot.meta, id: "other" } })).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT" });
  });

  it("reads the offsets of a trace in order", async () => {
    await writeFile(`${dir.path}/trace`, indexFile([8192, 0, 4096 * 40]));
    expect(await readOffsets(`${dir.path}/trace`)).toEqual([8192n, 0n, 163840n]);
    await writeFile(`${dir.path}/bad`, "not an index at all, not at all");
    await expect(readOffsets(`${dir.path}/bad`)).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT" });
  });
});
