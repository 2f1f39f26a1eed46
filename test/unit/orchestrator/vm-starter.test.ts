/** The VM starter's checks before any start: a deployment's method and proto, a request's data. No VM. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ImageStore, type FunctionConfig } from "../../../src/image/index.js";
import { VmStarter } from "../../../src/orchestrator/index.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { StatePaths } from "../../../src/shared/paths.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import type { Host } from "../../../src/start/index.js";
import { rejection } from "../invoke/fixtures.js";
import { Cleanups } from "../test-shared/cleanups.js";
import { fakeFunction } from "./fake-starter.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const SHOP_PROTO = `syntax = "proto3"; package shop;
service Shop { rpc Order (OrderRequest) returns (OrderReply) {} }
message OrderRequest { string item = 1; int32 count = 2; } message OrderReply { string receipt = 1; }`;

/** A state directory with a gRPC image (its request has two fields) and an HTTP image. */
async function starterWithImages(): Promise<{ starter: VmStarter; grpcId: string; httpId: string }> {
  const dir = await makeTempDir("vm-starter-test");
  cleanups.push(() => dir.remove());
  const paths = new StatePaths(dir.path);
  const store = new ImageStore(paths);
  const commit = async (id: string, config: FunctionConfig, files: Record<string, string>) => {
    const build = join(dir.path, `build-${id}`);
    await mkdir(build);
    for (const [name, text] of Object.entries({ "rootfs.ext4": "", ...files })) await writeFile(join(build, name), text);
    await store.commit(build, { id, name: id, source: { kind: "recipe", path: build, digest: "d" }, rootfsDigest: "r", config });
  };
  const base = { argv: ["serve"], env: {}, workdir: "/", port: 8080 };
  await commit("shop", { ...base, protocol: "grpc", method: "shop.Shop/Order", proto: "shop.proto" }, { "shop.proto": SHOP_PROTO });
  await commit("web", { ...base, protocol: "http" }, {});
  const host = { paths, log: new NoOpLog() } as unknown as Host;
  return { starter: new VmStarter(host), grpcId: "shop", httpId: "web" };
}

describe("VmStarter checks", () => {
  it("refuses a deployment whose method its proto does not define, naming the ones it does", async () => {
    const { starter, grpcId } = await starterWithImages();
    await expect(starter.checkFunction(fakeFunction({ imageId: grpcId }))).resolves.toBeUndefined();
    const error = await rejection(starter.checkFunction(fakeFunction({ imageId: grpcId, method: "shop.Shop/Refund" })));
    expect(error.code).toBe("ERR_PROTO_INVALID");
    expect(error.message).toContain("it defines shop.Shop/Order");
  });

  it("refuses a gRPC method and proto for an HTTP function", async () => {
    const { starter, httpId } = await starterWithImages();
    const error = await rejection(starter.checkFunction(fakeFunction({ imageId: httpId, method: "shop.Shop/Order" })));
    expect(error.code).toBe("ERR_VALIDATION");
    expect(error.message).toContain("is an HTTP function");
  });

  it("checks a request's data, and the default request when there is none, against the request message", async () => {
    const { starter, grpcId, httpId } = await starterWithImages();
    const fn = fakeFunction({ imageId: grpcId });
    await expect(starter.checkRequest(fn, '{"item":"apple","count":2}')).resolves.toBeUndefined();
    expect((await rejection(starter.checkRequest(fn, '{"item":"apple","count":"two"}'))).message).toContain('"count" is "two"');
    // No inputs in the image: the default request is "world", which a two-field request cannot take.
    expect((await rejection(starter.checkRequest(fn, undefined))).message).toContain("--data must be a JSON object for shop.OrderRequest");
    await expect(starter.checkRequest(fakeFunction({ imageId: httpId }), "{ any body")).resolves.toBeUndefined();
  });
});
