/**
 * Importing an OCI layout made with umoci from a small busybox rootfs, running it, and the
 * ways a function's entrypoint can fail.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { importImage } from "../../src/image/index.js";
import { runOnce } from "../../src/start/index.js";
import { StatePaths } from "../../src/shared/paths.js";
import { makeTempDir, type TempDir } from "../../src/shared/tmp.js";
import { expectNothingLeft, runCli, stateDir, testHost } from "./harness.js";

let work: TempDir;
let layout: string;

/** An OCI layout whose image serves /www with busybox httpd on port 8080. */
function makeBusyboxLayout(dir: string): string {
  const layoutDir = `${dir}/layout`;
  const bundle = `${dir}/bundle`;
  const umoci = (...args: string[]) => execFileSync("umoci", args, { stdio: "pipe" });
  umoci("init", "--layout", layoutDir);
  umoci("new", "--image", `${layoutDir}:web`);
  umoci("unpack", "--image", `${layoutDir}:web`, bundle);
  const root = `${bundle}/rootfs`;
  mkdirSync(`${root}/bin`, { recursive: true });
  mkdirSync(`${root}/www`, { recursive: true });
  copyFileSync("/bin/busybox", `${root}/bin/busybox`);
  execFileSync("chmod", ["755", `${root}/bin/busybox`]);
  execFileSync("ln", ["-s", "busybox", `${root}/bin/sh`]);
  writeFileSync(`${root}/www/index.html`, "served from an imported OCI image\n");
  umoci("repack", "--image", `${layoutDir}:web`, bundle);
  umoci(
    "config", "--image", `${layoutDir}:web`,
    "--config.entrypoint", "/bin/busybox",
    "--config.cmd", "httpd", "--config.cmd", "-f", "--config.cmd", "-p", "--config.cmd", "8080", "--config.cmd", "-h", "--config.cmd", "/www",
    "--config.exposedports", "8080/tcp",
    "--config.env", "GREETING=a=b",
    "--config.workingdir", "/www",
  );
  return layoutDir;
}

beforeAll(async () => {
  work = await makeTempDir("oci-test");
  layout = makeBusyboxLayout(work.path);
});
afterAll(() => work.remove());

describe("importing an OCI image", () => {
  afterEach(expectNothingLeft);

  it("vhive image import --json names the image, and vhive run serves its HTTP reply", async () => {
    const imported = await runCli(["image", "import", layout, "--json"]);
    expect(imported.code, imported.stderr).toBe(0);
    const image = JSON.parse(imported.stdout);
    expect(image.id).toMatch(/^[0-9a-f]{64}$/);
    expect(image.bytes).toBeGreaterThan(1024 * 1024);
    expect(image.config).toMatchObject({ argv: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080, protocol: "http", workdir: "/www" });
    expect(image.config.env.GREETING).toBe("a=b");

    const listed = await runCli(["image", "ls", "--json"]);
    expect(JSON.parse(listed.stdout).map((i: { id: string }) => i.id)).toContain(image.id);

    const run = await runCli(["run", image.id.slice(0, 12), "--json"]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).response).toEqual({ status: 200, body: "served from an imported OCI image\n" });
  });

  it("importing the same layout twice gives the same image", async () => {
    const paths = new StatePaths(stateDir());
    const first = await importImage(paths, layout);
    const second = await importImage(paths, layout);
    expect(second.id).toBe(first.id);
    expect(second.createdAt).toBe(first.createdAt);
  });

  it("an entrypoint that exits ends the run with its status and the serial log", async () => {
    const image = await importImage(new StatePaths(stateDir()), layout, {
      name: "exits",
      argv: ["/bin/sh", "-c", "echo function-is-leaving; exit 3"],
    });
    const failure = runOnce(await testHost(), image, "");
    await expect(failure).rejects.toMatchObject({ code: "ERR_GUEST_EXITED", message: expect.stringContaining("status 3") });
    await expect(failure).rejects.toMatchObject({ details: expect.stringContaining("function-is-leaving") });
  });

  it("an entrypoint that never answers times out with the last lines of the serial log", async () => {
    const image = await importImage(new StatePaths(stateDir()), layout, {
      name: "silent",
      argv: ["/bin/sh", "-c", "echo listening-nowhere; exec sleep 600"],
    });
    const failure = runOnce(await testHost(), image, "", { readyTimeoutMs: 15_000 });
    await expect(failure).rejects.toMatchObject({ code: "ERR_READY_TIMEOUT", details: expect.stringContaining("listening-nowhere") });
  });

  it("a missing layout is refused naming the path", async () => {
    const { code, stderr } = await runCli(["image", "import", `${work.path}/nothing-here`]);
    expect(code).toBe(1);
    expect(stderr).toContain("ERR_IMAGE_INVALID");
    expect(stderr).toContain(`${work.path}/nothing-here`);
  });
});
