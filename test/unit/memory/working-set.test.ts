import { readFile, writeFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { addEncoding, commitWorkingSet, encodingPaths, loadWorkingSet, moveWorkingSetAside, pickEncoding, readOffsets, removeWorkingSet, workingSetPaths, type WsCodec } from "../../../src/memory/index.js";
import { checkPages, writePageSums, type StoredSnapshot } from "../../../src/snapshot/index.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { indexFile, traceFile } from "../test-shared/ws-index.js";

let dir: TempDir;
let snapshot: StoredSnapshot;

beforeEach(async () => {
  dir = await makeTempDir("ws-test");
  snapshot = { dir: dir.path, memPath: `${dir.path}/mem`, sumsPath: `${dir.path}/mem.sums`, statePath: `${dir.path}/state`, meta: { id: "abc123" } } as StoredSnapshot;
});
afterEach(() => dir.remove());

/** An encoding's files as the pager writes them: `storedBytes` of pages, an index of `pages` entries in one block. */
async function writeEncoding(pages: number, storedBytes: number, codec: WsCodec = "lz4"): Promise<void> {
  const files = encodingPaths(snapshot, codec);
  await writeFile(files.pagesPath, Buffer.alloc(storedBytes));
  await writeFile(files.indexPath, indexFile(Array.from({ length: pages }, (_, i) => i * 4096)));
  await writeFile(workingSetPaths(snapshot).tracePath, traceFile(Array.from({ length: pages }, (_, i) => i * 4096)));
}

const written = (pages: number, bytes: number, codec: WsCodec = "lz4") => ({ pages, zeroPages: 1, pageSize: 4096, codec, bytes, blocks: 1, blockPages: 64, level: 9, input: "A" });

describe("working sets", () => {
  it("a snapshot without ws.json has no working set", async () => {
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
  });

  it("loads what was committed with its encoding, and forgets it when removed", async () => {
    await writeEncoding(3, 1000);
    await commitWorkingSet(snapshot, written(3, 1000));
    const ws = await loadWorkingSet(snapshot);
    expect(ws?.meta).toMatchObject({ format: 3, snapshotId: "abc123", pages: 3, zeroPages: 1, input: "A" });
    expect(ws?.encodings).toEqual([expect.objectContaining({ codec: "lz4", bytes: 1000, pagesPath: `${dir.path}/ws-lz4.pages`, indexPath: `${dir.path}/ws-lz4.index` })]);
    await removeWorkingSet(snapshot);
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
    await expect(readFile(`${dir.path}/ws-lz4.pages`)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("picks the encoding asked for, else the default one, else the one stored", async () => {
    await writeEncoding(3, 3 * 4096, "raw");
    const rawOnly = await commitWorkingSet(snapshot, written(3, 3 * 4096, "raw"));
    expect(pickEncoding(rawOnly)?.codec).toBe("raw");
    expect(pickEncoding(rawOnly, "zstd")).toBeUndefined();
    await writeEncoding(3, 1000, "lz4");
    await writeFile(workingSetPaths(snapshot).metaPath, JSON.stringify({ ...rawOnly.meta, encodings: { ...rawOnly.meta.encodings, lz4: { bytes: 1000, blocks: 1, blockPages: 64, level: 9 } } }));
    const both = (await loadWorkingSet(snapshot))!;
    expect(both.encodings.map((e) => e.codec)).toEqual(["raw", "lz4"]);
    expect(pickEncoding(both)?.codec).toBe("lz4");
    expect(pickEncoding(both, "raw")?.codec).toBe("raw");
  });

  it("a truncated pages file is refused naming the file, with a remedy", async () => {
    await writeEncoding(3, 1000);
    await commitWorkingSet(snapshot, written(3, 1000));
    await writeFile(encodingPaths(snapshot, "lz4").pagesPath, Buffer.alloc(100));
    await expect(loadWorkingSet(snapshot)).rejects.toMatchObject({
      code: "ERR_SNAPSHOT_CORRUPT",
      message: expect.stringMatching(/ws-lz4\.pages is damaged: it is 100 bytes, expected 1000/),
      remedy: expect.stringContaining("--mode record"),
    });
  });

  it("an index that does not fit its entries and blocks is refused", async () => {
    await writeEncoding(3, 1000);
    await commitWorkingSet(snapshot, written(3, 1000));
    await writeFile(encodingPaths(snapshot, "lz4").indexPath, indexFile([0, 4096]));
    await expect(loadWorkingSet(snapshot)).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT", message: expect.stringMatching(/ws-lz4\.index is damaged/) });
  });

  it("a ws.json of another snapshot is refused", async () => {
    await writeEncoding(1, 100);
    await commitWorkingSet(snapshot, written(1, 100));
    await expect(loadWorkingSet({ ...snapshot, meta: { ...snapshot.meta, id: "other" } })).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT" });
  });

  it("a ws.json of a format newer than this vhive reads is refused, not misread", async () => {
    await writeEncoding(1, 100);
    const ws = await commitWorkingSet(snapshot, written(1, 100));
    await writeFile(workingSetPaths(snapshot).metaPath, JSON.stringify({ ...ws.meta, format: 4 }));
    await expect(loadWorkingSet(snapshot)).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT", message: expect.stringContaining("format 4") });
  });

  it("reads the offsets of a trace and of an index in file order", async () => {
    await writeFile(`${dir.path}/trace`, traceFile([8192, 0, 4096 * 40]));
    expect(await readOffsets(`${dir.path}/trace`)).toEqual([8192n, 0n, 163840n]);
    await writeFile(`${dir.path}/ws.index`, indexFile([8192, 0, 4096 * 40]));
    expect(await readOffsets(`${dir.path}/ws.index`)).toEqual([8192n, 0n, 163840n]);
    await writeFile(`${dir.path}/bad`, "not an index at all, not at all");
    await expect(readOffsets(`${dir.path}/bad`)).rejects.toMatchObject({ code: "ERR_SNAPSHOT_CORRUPT" });
  });
});

describe("a working set found damaged", () => {
  it("is moved aside with why, so the next REAP start records a new one", async () => {
    await writeEncoding(2, 500);
    const ws = await commitWorkingSet(snapshot, written(2, 500));
    const dest = await moveWorkingSetAside(snapshot, ws.meta.recordedAt, "ws-lz4.pages at offset 0 does not match");
    expect(dest).toMatch(/damaged\/ws-/);
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
    expect(JSON.parse(await readFile(`${dest}/why.json`, "utf8"))).toMatchObject({ reason: "ws-lz4.pages at offset 0 does not match" });
    expect((await readFile(`${dest}/ws-lz4.pages`)).length).toBe(500);
    expect((await readFile(`${dest}/trace`)).length).toBeGreaterThan(0);
  });

  it("is left alone if a newer one was recorded since", async () => {
    await writeEncoding(1, 100);
    await commitWorkingSet(snapshot, written(1, 100));
    expect(await moveWorkingSetAside(snapshot, "2000-01-01T00:00:00.000Z", "old damage")).toBeUndefined();
    expect(await loadWorkingSet(snapshot)).toBeDefined();
  });

  it("of an older format (1: no checksums; 2: every page raw, in offset order) counts as absent, so it is recorded again", async () => {
    await writeFile(`${dir.path}/ws.pages`, Buffer.alloc(4096));
    for (const format of [1, 2]) {
      await writeFile(workingSetPaths(snapshot).metaPath, JSON.stringify({ format, snapshotId: "abc123", pages: 1, bytes: 4096, pageSize: 4096, recordedAt: "x", input: "A" }));
      expect(await loadWorkingSet(snapshot)).toBeUndefined();
    }
  });
});

describe("encodings packed from the trace (vhive-wspack) and checked (vhive-pagesum)", () => {
  it("store the same pages raw, lz4 and zstd, zero pages left out, and a damaged block is found", async () => {
    // 16 pages of one repeated byte each; page 2 is zero. The recording touched 5, 2, 7 and 0.
    const mem = Buffer.alloc(16 * 4096);
    for (let i = 0; i < 16; i++) if (i !== 2) mem.fill(i + 1, i * 4096, (i + 1) * 4096);
    await writeFile(snapshot.memPath, mem);
    await writePageSums(snapshot.memPath, snapshot.sumsPath);
    await writeFile(workingSetPaths(snapshot).tracePath, traceFile([5, 2, 7, 0].map((page) => page * 4096)));
    let ws = await commitWorkingSet(snapshot, { ...written(4, 3 * 4096, "raw"), zeroPages: 1 });
    for (const codec of ["raw", "lz4", "zstd"] as const) ws = await addEncoding(snapshot, ws, codec);
    const loaded = (await loadWorkingSet(snapshot))!;
    expect(loaded.encodings.map((e) => [e.codec, e.blocks])).toEqual([
      ["raw", 1],
      ["lz4", 1],
      ["zstd", 1],
    ]);
    expect(loaded.encodings[0]!.bytes).toBe(3 * 4096); // the zero page is not stored
    expect(loaded.encodings[1]!.bytes).toBeLessThan(4096);
    expect(await readOffsets(loaded.encodings[1]!.indexPath)).toEqual([5, 2, 7, 0].map((page) => BigInt(page * 4096)));
    const whole = await checkPages({ memPath: snapshot.memPath, sumsPath: snapshot.sumsPath, workingSets: loaded.encodings });
    expect(whole.filter((check) => check.bad > 0)).toEqual([]);
    expect(whole.filter((check) => check.role === "working-set pages")).toHaveLength(3);

    const lz4 = loaded.encodings[1]!;
    const damaged = await readFile(lz4.pagesPath);
    damaged[5] = damaged[5]! ^ 0x5a;
    await writeFile(lz4.pagesPath, damaged);
    const checks = await checkPages({ memPath: snapshot.memPath, sumsPath: snapshot.sumsPath, workingSets: loaded.encodings });
    expect(checks.filter((check) => check.bad > 0)).toEqual([expect.objectContaining({ role: "working-set pages", file: lz4.pagesPath, badOffsets: [0] })]);
  });
});
