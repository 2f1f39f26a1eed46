import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { StoredImage } from "../../../src/image/index.js";
import { bootInstance, checkStart, type Host } from "../../../src/start/index.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { rejection } from "../invoke/fixtures.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const ORDER_PROTO = `syntax = "proto3";
package shop;
service Shop { rpc Order (OrderRequest) returns (OrderReply) {} }
message OrderRequest { string item = 1; int32 count = 2; }
message OrderReply { string receipt = 1; }
`;

/** An image of a gRPC function whose request has two fields (no rootfs: nothing may boot it). */
async function orderImage(): Promise<StoredImage> {
  const dir = await makeTempDir("check-start");
  cleanups.push(() => dir.remove());
  const protoPath = join(dir.path, "shop.proto");
  await writeFile(protoPath, ORDER_PROTO);
  return {
    id: "c".repeat(64),
    name: "shop",
    dir: dir.path,
    rootfsPath: join(dir.path, "missing.ext4"),
    protoPath,
    config: { argv: ["shop"], env: {}, workdir: "/", port: 50051, protocol: "grpc", method: "shop.Shop/Order" },
  } as unknown as StoredImage;
}

describe("checkStart", () => {
  it("refuses a first request that is not a request of the function, and accepts one that is", async () => {
    const image = await orderImage();
    const error = (() => {
      try {
        checkStart(image, { firstRequest: () => "two apples" });
      } catch (thrown) {
        return thrown as { code: string; message: string };
      }
      return undefined;
    })();
    expect(error).toMatchObject({ code: "ERR_VALIDATION", message: expect.stringContaining("--data must be a JSON object for shop.OrderRequest") });
    expect(() => checkStart(image, { firstRequest: () => '{"item":"apple","count":2}' })).not.toThrow();
  });

  it("makes a boot with bad --data fail before QEMU is started", async () => {
    const image = await orderImage();
    // A host with no QEMU at all: reaching the VM would throw a TypeError, not ERR_VALIDATION.
    const host = {} as Host;
    const error = await rejection(bootInstance(host, image, { firstRequest: () => '{"item":"apple","count":"two"}' }));
    expect(error.code).toBe("ERR_VALIDATION");
    expect(error.message).toContain('"count" is "two"');
  });
});
