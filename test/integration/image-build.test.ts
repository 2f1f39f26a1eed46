/**
 * `vhive image build` against Debian's real apt sources, for what a recipe gets wrong: a package
 * that does not exist fails fast (no rootfs is packed) and says which one on the error's first
 * line, with what to do.
 */
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StatePaths } from "../../src/shared/paths.js";
import { makeTempDir } from "../../src/shared/tmp.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { expectNothingLeft, runCli, stateDir } from "./harness.js";

const cleanups = new Cleanups();
afterEach(async () => {
  await cleanups.run();
  await expectNothingLeft();
});

describe("vhive image build", () => {
  it("a recipe naming a package Debian does not have fails naming the package and how to check it", async () => {
    const dir = await makeTempDir("missing-package");
    cleanups.push(() => dir.remove());
    const recipe = { name: "missing-package", packages: ["python3-minimal", "python3-grpcioo"], entrypoint: ["python3", "-c", "pass"], port: 8080, protocol: "http" };
    await writeFile(join(dir.path, "recipe.json"), JSON.stringify(recipe));
    const result = await runCli(["image", "build", dir.path]);
    expect(result.code).toBe(1);
    const [first] = result.stderr.split("\n").filter((line) => line.startsWith("error ["));
    expect(first).toMatch(/^error \[ERR_IMAGE_BUILD\]: building missing-package: apt found no package python3-grpcioo in the Debian \w+ sources \(named in .*recipe\.json, "packages"\)$/);
    expect(result.stderr).toContain("what to do: check the name with `apt-cache policy python3-grpcioo`");
    // The failed build left no directory behind.
    expect((await readdir(new StatePaths(stateDir()).tmpDir).catch(() => [])).filter((name) => name.startsWith("build-"))).toEqual([]);
  });
});
