import { readFile, writeFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { evictFromPageCache, residentBytes, syncFile } from "../../../src/snapshot/index.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";

let dir: TempDir | undefined;
afterEach(async () => dir?.remove());

describe("page cache", () => {
  it("evicts a synced file so that the next read comes from disk", async () => {
    dir = await makeTempDir("cache-test");
    const path = `${dir.path}/data`;
    await writeFile(path, Buffer.alloc(4 * 1024 * 1024, 1));
    await syncFile(path);
    await readFile(path);
    expect(await residentBytes(path)).toBeGreaterThan(0);
    await evictFromPageCache([path]);
    expect(await residentBytes(path)).toBe(0);
  });
});
