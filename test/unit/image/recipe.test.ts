import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { entryScript, loadRecipe } from "../../../src/image/index.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";

let dir: TempDir;
afterEach(async () => dir?.remove());

const valid = {
  name: "fn",
  packages: ["python3-minimal"],
  files: [{ src: "server.py", dest: "/app/server.py" }],
  entrypoint: ["python3", "/app/server.py"],
  port: 50051,
  protocol: "grpc",
};

async function recipeDir(recipe: unknown, files: Record<string, string> = { "server.py": "print(1)" }): Promise<string> {
  dir = await makeTempDir("recipe-test");
  await writeFile(`${dir.path}/recipe.json`, typeof recipe === "string" ? recipe : JSON.stringify(recipe));
  for (const [name, text] of Object.entries(files)) await writeFile(`${dir.path}/${name}`, text);
  return dir.path;
}

describe("recipes", () => {
  it("loads a valid recipe with defaults filled in", async () => {
    const { recipe, digest } = await loadRecipe(await recipeDir(valid));
    expect(recipe).toMatchObject({ workdir: "/", env: {}, build: [], protocol: "grpc" });
    expect(digest).toMatch(/^sha256:/);
  });

  it("the content address changes when a copied file changes", async () => {
    const first = await loadRecipe(await recipeDir(valid, { "server.py": "print(1)" }));
    await dir.remove();
    const second = await loadRecipe(await recipeDir(valid, { "server.py": "print(2)" }));
    expect(second.digest).not.toBe(first.digest);
  });

  it("a directory without recipe.json is refused with a pointer to an example", async () => {
    dir = await makeTempDir("recipe-test");
    await mkdir(`${dir.path}/empty`);
    await expect(loadRecipe(`${dir.path}/empty`)).rejects.toMatchObject({
      code: "ERR_RECIPE_INVALID",
      message: expect.stringContaining(`${dir.path}/empty/recipe.json`),
      remedy: expect.stringContaining("functions/helloworld"),
    });
  });

  it("invalid JSON names the file", async () => {
    const path = await recipeDir("{ not json");
    await expect(loadRecipe(path)).rejects.toMatchObject({ code: "ERR_RECIPE_INVALID", message: expect.stringMatching(/recipe\.json is not valid JSON/) });
  });

  it("names each field that is wrong, and refuses unknown fields", async () => {
    const path = await recipeDir({ ...valid, port: 70000, protocol: "smtp", colour: "blue" });
    const error = (await loadRecipe(path).catch((e: Error) => e)) as Error;
    expect(error).toMatchObject({ code: "ERR_RECIPE_INVALID" });
    expect(error.message).toContain("port:");
    expect(error.message).toContain("protocol:");
    expect(error.message).toContain("colour");
  });

  it("a file the recipe copies in must exist", async () => {
    const path = await recipeDir(valid, {});
    await expect(loadRecipe(path)).rejects.toMatchObject({ code: "ERR_RECIPE_INVALID", message: expect.stringContaining("names server.py") });
  });
});

/** Run an entry script on the host with the real busybox standing in for /.vhive/busybox. */
function runEntryScript(script: string): string {
  return execFileSync("/bin/busybox", ["sh", "-c", script.replaceAll("/.vhive/busybox", "/bin/busybox")], { encoding: "utf8" });
}

describe("entry script", () => {
  it("runs the argv in the workdir with exactly the image's environment, every word intact", async () => {
    dir = await makeTempDir("entry-test");
    await mkdir(`${dir.path}/my app`);
    const script = entryScript({
      argv: ["sh", "-c", 'echo "$GREETING|$PATH|$HOME|$UNSET_BY_ENV_I|$1"; pwd', "argv0", "two words"],
      env: { GREETING: "it's $HOME; a=b" },
      workdir: `${dir.path}/my app`,
    });
    const output = runEntryScript(script).split("\n");
    expect(output[0]).toBe("it's $HOME; a=b|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root||two words");
    expect(output[1]).toBe(`${dir.path}/my app`);
  });

  it("lets the image override PATH", () => {
    expect(runEntryScript(entryScript({ argv: ["/bin/busybox", "sh", "-c", "echo $PATH"], env: { PATH: "/opt/bin" }, workdir: "/" }))).toBe("/opt/bin\n");
  });

  it("exits 127 when the workdir does not exist", () => {
    const script = entryScript({ argv: ["true"], env: {}, workdir: "/no/such/dir" });
    let status: number | undefined;
    try {
      runEntryScript(script);
    } catch (error) {
      status = (error as { status: number }).status;
    }
    expect(status).toBe(127);
  });
});
