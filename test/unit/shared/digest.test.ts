import { readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { digestFile, digestFileCached } from "../../../src/shared/digest.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function dirs(): Promise<{ file: string; cache: string }> {
  const dir = await makeTempDir("digest-test");
  cleanups.push(() => dir.remove());
  return { file: join(dir.path, "vmlinux"), cache: join(dir.path, "digests") };
}

describe("digestFileCached", () => {
  it("remembers a file's digest and answers from the entry while the file is unchanged", async () => {
    const { file, cache } = await dirs();
    await writeFile(file, "kernel one");
    const digest = await digestFileCached(file, cache);
    expect(digest).toBe(await digestFile(file));
    const [entry] = await readdir(cache);
    const entryPath = join(cache, entry!);
    // Proof that the entry is what answers: a digest planted in it comes back.
    const stored = JSON.parse(await readFile(entryPath, "utf8")) as { key: string; digest: string };
    await writeFile(entryPath, JSON.stringify({ ...stored, digest: "sha256:planted" }));
    expect(await digestFileCached(file, cache)).toBe("sha256:planted");
  });

  it("digests the file again once it changed, even to the same size with its old mtime", async () => {
    const { file, cache } = await dirs();
    await writeFile(file, "kernel one");
    const old = await digestFileCached(file, cache);
    await writeFile(file, "kernel two"); // same size
    await utimes(file, new Date(0), new Date(0));
    const changed = await digestFileCached(file, cache);
    expect(changed).not.toBe(old);
    expect(changed).toBe(await digestFile(file));
  });

  it("digests again when the entry is damaged, and fails for a missing file", async () => {
    const { file, cache } = await dirs();
    await writeFile(file, "kernel");
    await digestFileCached(file, cache);
    const [entry] = await readdir(cache);
    await writeFile(join(cache, entry!), "{not json");
    expect(await digestFileCached(file, cache)).toBe(await digestFile(file));
    await expect(digestFileCached(`${file}.missing`, cache)).rejects.toMatchObject({ code: "ENOENT" });
  });
});
