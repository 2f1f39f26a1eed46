import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SnapshotCorruptError } from "../../../src/shared/errors.js";
import { StatePaths } from "../../../src/shared/paths.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { checkPages, memoryUnchangedSinceVerified, SnapshotStore, stampVerified, writePageSums } from "../../../src/snapshot/index.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const PAGE = 4096;

async function stateDir(): Promise<string> {
  const dir = await makeTempDir("integrity");
  cleanups.push(() => dir.remove());
  return dir.path;
}

/** A memory file of `pages` pages, each filled with its number (page 2 left a hole). */
async function memoryFile(path: string, pages: number): Promise<void> {
  const data = Buffer.alloc(pages * PAGE);
  for (let i = 0; i < pages; i++) if (i !== 2) data.fill(i + 1, i * PAGE, (i + 1) * PAGE);
  await writeFile(path, data);
}

describe("page checksums (vhive-pagesum)", () => {
  it("match the file they were written from, and name the page a stray write damaged", async () => {
    const dir = await stateDir();
    const mem = join(dir, "mem");
    await memoryFile(mem, 16);
    expect(await writePageSums(mem, join(dir, "mem.sums"))).toMatchObject({ pages: 16 });
    expect((await checkPages({ memPath: mem, sumsPath: join(dir, "mem.sums") })).map((c) => [c.role, c.bad])).toEqual([
      ["checksums", 0],
      ["memory", 0],
    ]);
    await writeFile(mem, Buffer.from([0xff]), { flag: "r+" }); // a stray write: page 0, byte 0
    const checks = await checkPages({ memPath: mem, sumsPath: join(dir, "mem.sums") });
    expect(checks.find((c) => c.role === "memory")).toMatchObject({ bad: 1, badOffsets: [0] });
  });
});

describe("the verified stamp of a memory file", () => {
  it("holds until the file is written to", async () => {
    const dir = await stateDir();
    const mem = join(dir, "mem");
    await memoryFile(mem, 4);
    expect(await memoryUnchangedSinceVerified(dir, mem)).toBe(false);
    await stampVerified(dir, mem);
    expect(await memoryUnchangedSinceVerified(dir, mem)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 10));
    await writeFile(mem, Buffer.from([1]), { flag: "r+" });
    expect(await memoryUnchangedSinceVerified(dir, mem)).toBe(false);
  });
});

describe("the snapshot store", () => {
  async function storedSnapshot(root: string, format: number): Promise<string> {
    const dir = join(root, "snapshots", "hello", "s1");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "meta.json"), JSON.stringify({ format, id: "s1" }));
    return dir;
  }

  it("lists a snapshot of the older format as damaged, saying why", async () => {
    const root = await stateDir();
    await storedSnapshot(root, 1);
    const { snapshots, damaged } = await new SnapshotStore(new StatePaths(root)).list();
    expect(snapshots).toEqual([]);
    expect(damaged[0]!.problem).toMatch(/older vhive \(format 1: no page checksums/);
  });

  it("quarantines a snapshot: kept, listed as damaged with the reason, and the first reason stays", async () => {
    const root = await stateDir();
    const dir = await storedSnapshot(root, 2);
    const store = new SnapshotStore(new StatePaths(root));
    const snapshot = { dir, meta: { id: "s1" } } as never;
    await store.quarantine(snapshot, "mem is damaged at offset 4096");
    await store.quarantine(snapshot, "a later reason");
    const { damaged } = await store.list();
    expect(damaged).toMatchObject([{ id: "s1", problem: "quarantined: mem is damaged at offset 4096" }]);
  });

  it("refuses a snapshot whose checksum file went missing, naming it", async () => {
    const root = await stateDir();
    const dir = join(root, "s");
    await mkdir(dir);
    await memoryFile(join(dir, "mem"), 2);
    await writeFile(join(dir, "state"), "x");
    const snapshot = {
      dir,
      memPath: join(dir, "mem"),
      statePath: join(dir, "state"),
      sumsPath: join(dir, "mem.sums"),
      meta: { id: "s", files: { mem: { bytes: 2 * PAGE }, sums: { bytes: 48 }, state: { bytes: 1, digest: "x" } } },
    } as never;
    const error = await new SnapshotStore(new StatePaths(root)).verify(snapshot).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapshotCorruptError);
    expect(error).toMatchObject({ part: "checksums", message: expect.stringContaining("mem.sums is damaged: the file is missing") });
  });
});
