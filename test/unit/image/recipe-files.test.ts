/** Recipe `files` that name directories: their content address, the symlink rule, and the copy itself. */
import { execFileSync } from "node:child_process";
import { chmod, lstat, mkdir, readFile, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { copyHooks } from "../../../src/image/build.js";
import { loadRecipe } from "../../../src/image/index.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { rejection } from "../invoke/fixtures.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/**
 * A recipe copying the directory app/ to /srv/app:
 *   app/server.js, app/bin/run (mode 750), app/node_modules/lib/index.js,
 *   app/node_modules/.bin/lib -> ../lib/index.js (a link inside the tree)
 */
async function recipeWithTree(): Promise<{ dir: string; app: string }> {
  const temp = await makeTempDir("recipe-files-test");
  cleanups.push(() => temp.remove());
  const dir = join(temp.path, "recipe");
  const app = join(dir, "app");
  await mkdir(join(app, "bin"), { recursive: true });
  await mkdir(join(app, "node_modules", "lib"), { recursive: true });
  await mkdir(join(app, "node_modules", ".bin"));
  await writeFile(join(app, "server.js"), "console.log(1)");
  await writeFile(join(app, "bin", "run"), "#!/bin/sh\n");
  await chmod(join(app, "bin", "run"), 0o750);
  await writeFile(join(app, "node_modules", "lib", "index.js"), "module.exports = 1");
  await symlink("../lib/index.js", join(app, "node_modules", ".bin", "lib"));
  await writeFile(join(temp.path, "outside.txt"), "not in the recipe");
  await writeFile(
    join(dir, "recipe.json"),
    JSON.stringify({ name: "tree", files: [{ src: "app", dest: "/srv/app" }], entrypoint: ["node", "/srv/app/server.js"], port: 8080, protocol: "http" }),
  );
  return { dir, app };
}

describe("recipe files that are directories", () => {
  it("are accepted, and the content address covers every file's content and mode and every link's target", async () => {
    const { dir, app } = await recipeWithTree();
    const digests = [(await loadRecipe(dir)).digest];
    await writeFile(join(app, "node_modules", "lib", "index.js"), "module.exports = 2");
    digests.push((await loadRecipe(dir)).digest);
    await chmod(join(app, "bin", "run"), 0o755);
    digests.push((await loadRecipe(dir)).digest);
    await writeFile(join(app, "node_modules", "lib", "other.js"), "");
    execFileSync("ln", ["-sfn", "../lib/other.js", join(app, "node_modules", ".bin", "lib")]);
    digests.push((await loadRecipe(dir)).digest);
    expect(new Set(digests).size).toBe(4);
    expect((await loadRecipe(dir)).digest).toBe(digests[3]); // and is stable
  });

  it.each([
    ["a link out of the directory", "../../outside.txt"],
    ["an absolute link", "/etc/passwd"],
    ["a link that climbs out and back in by the directory's name", "../../app/server.js"],
  ])("refuses %s with ERR_RECIPE_INVALID naming it", async (_what, target) => {
    const { dir, app } = await recipeWithTree();
    await symlink(target, join(app, "node_modules", "escape"));
    const error = await rejection(loadRecipe(dir));
    expect(error.code).toBe("ERR_RECIPE_INVALID");
    expect(error.message).toBe(`${join(dir, "recipe.json")}: app/node_modules/escape is a symlink to ${target}, which leads outside app; in the image it would point at whatever the guest has there`);
    expect(error.remedy).toContain("replace the link");
  });

  it("are copied whole by the build: nested files with their modes, links inside as links, into dest itself", async () => {
    const { dir } = await recipeWithTree();
    const root = await makeTempDir("recipe-files-root");
    cleanups.push(() => root.remove());
    await mkdir(join(root.path, "srv", "app"), { recursive: true }); // dest exists: the contents merge into it
    for (const hook of copyHooks(await loadRecipe(dir))) execFileSync("sh", ["-c", hook, "hook", root.path]);
    const copied = join(root.path, "srv", "app");
    expect(await readFile(join(copied, "server.js"), "utf8")).toBe("console.log(1)");
    expect((await stat(join(copied, "bin", "run"))).mode & 0o777).toBe(0o750);
    expect((await lstat(join(copied, "node_modules", ".bin", "lib"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(copied, "node_modules", ".bin", "lib"))).toBe("../lib/index.js");
    expect(await readFile(join(copied, "node_modules", ".bin", "lib"), "utf8")).toBe("module.exports = 1");
  });

  it("a src that is itself a link is followed: its target is copied", async () => {
    const { dir } = await recipeWithTree();
    await symlink("app/server.js", join(dir, "main.js"));
    const recipe = JSON.parse(await readFile(join(dir, "recipe.json"), "utf8"));
    await writeFile(join(dir, "recipe.json"), JSON.stringify({ ...recipe, files: [{ src: "main.js", dest: "/srv/main.js" }] }));
    const root = await makeTempDir("recipe-files-root");
    cleanups.push(() => root.remove());
    for (const hook of copyHooks(await loadRecipe(dir))) execFileSync("sh", ["-c", hook, "hook", root.path]);
    expect((await lstat(join(root.path, "srv", "main.js"))).isFile()).toBe(true);
  });
});
