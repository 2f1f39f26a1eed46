/**
 * The round trip of a real function: helloworld exported with `vhive image export`, imported
 * back with `vhive image import` and no flags (the labels say it is gRPC on 50051 with
 * helloworld's .proto), booted, and answering; the same archive imported by containerd's
 * `ctr images import`.
 */
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { makeTempDir, type TempDir } from "../../src/shared/tmp.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { startContainerd } from "../unit/test-shared/containerd.js";
import { expectNothingLeft, runCli } from "./harness.js";

let work: TempDir;
let archive: string;
const cleanups = new Cleanups();

beforeAll(async () => {
  work = await makeTempDir("export-test");
  archive = join(work.path, "helloworld.tar");
});
afterAll(() => work.remove());

describe("exporting helloworld", () => {
  afterEach(async () => {
    await cleanups.run();
    await expectNothingLeft();
  });

  it("vhive image export, then vhive image import without flags, gives an image that boots and answers", async () => {
    const exported = await runCli(["image", "export", inject("helloworldId").slice(0, 12), archive, "--json"]);
    expect(exported.code, exported.stderr).toBe(0);
    const summary = JSON.parse(exported.stdout);
    expect(summary).toMatchObject({ path: archive, ref: "vhive.local/helloworld:latest", image: { name: "helloworld" }, lost: { sockets: [], xattrPaths: [] } });
    expect(summary.layer.entries).toBeGreaterThan(1000);

    const imported = await runCli(["image", "import", archive, "--json"]);
    expect(imported.code, imported.stderr).toBe(0);
    const image = JSON.parse(imported.stdout);
    expect(image.name).toBe("vhive.local/helloworld:latest");
    expect(image.config).toMatchObject({
      argv: ["python3", "/app/server.py"],
      workdir: "/app",
      port: 50051,
      protocol: "grpc",
      method: "helloworld.Greeter/SayHello",
      proto: "helloworld.proto",
      inputs: ["world", "vhive"],
    });
    expect(image.config.env).toMatchObject({ PYTHONUNBUFFERED: "1" });

    const run = await runCli(["run", image.id.slice(0, 12), "--data", "export", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).response).toEqual({ message: "Hello, export!" });
  });

  it("ctr images import takes the same archive, with helloworld's entrypoint and port", async () => {
    const containerd = await startContainerd(cleanups);
    const ctr = (...args: string[]) => containerd.ctr(["--namespace", "vhive-export-test", ...args]);
    expect(await ctr("images", "import", archive)).toContain("unpacking vhive.local/helloworld:latest");
    const [line] = (await ctr("images", "ls")).split("\n").filter((l) => l.startsWith("vhive.local/helloworld:latest "));
    const manifestDigest = /\s(sha256:[0-9a-f]{64})\s/.exec(line ?? "")?.[1];
    expect(manifestDigest, line).toBeDefined();
    const manifest = JSON.parse(await ctr("content", "get", manifestDigest!));
    const config = JSON.parse(await ctr("content", "get", manifest.config.digest));
    expect(config.config).toMatchObject({
      Entrypoint: ["python3", "/app/server.py"],
      ExposedPorts: { "50051/tcp": {} },
      Labels: { "dev.vhive.protocol": "grpc", "dev.vhive.grpc.method": "helloworld.Greeter/SayHello" },
    });
  });

  it("an unknown image and an unwritable destination are refused with their codes, leaving no file", async () => {
    const unknown = await runCli(["image", "export", "no-such-image", join(work.path, "unknown.tar")]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("ERR_IMAGE_NOT_FOUND");
    const unwritable = await runCli(["image", "export", inject("helloworldId").slice(0, 12), join(work.path, "missing", "x.tar")]);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toContain("ERR_IMAGE_EXPORT");
    expect(unwritable.stderr).toContain(`${join(work.path, "missing")} does not exist`);
  });
});
