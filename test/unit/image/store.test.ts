import { mkdir, writeFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ImageStore, type ImageRecord } from "../../../src/image/index.js";
import { StatePaths } from "../../../src/shared/paths.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";

let dir: TempDir;
let paths: StatePaths;
beforeEach(async () => {
  dir = await makeTempDir("store-test");
  paths = new StatePaths(dir.path);
});
afterEach(() => dir.remove());

async function addImage(id: string, name: string, createdAt: string, finished = true): Promise<void> {
  const record: ImageRecord = {
    id,
    name,
    source: { kind: "recipe", path: `/recipes/${name}`, digest: "sha256:x" },
    createdAt,
    bytes: 1,
    rootfsDigest: "sha256:y",
    config: { argv: ["x"], env: {}, workdir: "/", port: 1, protocol: "http" },
  };
  await mkdir(paths.imageDir(id), { recursive: true });
  if (finished) await writeFile(`${paths.imageDir(id)}/image.json`, JSON.stringify(record));
}

describe("image store", () => {
  it("resolves by id, unique prefix, newest of a name, and source path", async () => {
    await addImage("aaaa1111".padEnd(64, "0"), "hello", "2026-01-01T00:00:00Z");
    await addImage("aaaa2222".padEnd(64, "0"), "hello", "2026-02-01T00:00:00Z");
    await addImage("bbbb".padEnd(64, "0"), "other", "2026-01-01T00:00:00Z");
    const store = new ImageStore(paths);
    expect((await store.resolve("aaaa1111")).id).toBe("aaaa1111".padEnd(64, "0"));
    expect((await store.resolve("hello")).id).toBe("aaaa2222".padEnd(64, "0"));
    expect((await store.resolve("/recipes/other")).name).toBe("other");
    await expect(store.resolve("aaaa")).rejects.toMatchObject({ code: "ERR_IMAGE_AMBIGUOUS" });
    await expect(store.resolve("nope")).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND", remedy: expect.stringContaining("vhive image build") });
  });

  it("does not list an unfinished build (no image.json)", async () => {
    await addImage("cccc".padEnd(64, "0"), "half", "2026-01-01T00:00:00Z", false);
    expect(await new ImageStore(paths).list()).toEqual([]);
  });
});
