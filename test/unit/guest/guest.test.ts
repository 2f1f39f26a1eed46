/** Guest preparation errors, and the pieces that need no VM. */
import { mkdir, writeFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { findCloudKernel, findLz4Payload, isStaticElf } from "../../../src/guest/index.js";
import { prepareInitramfs } from "../../../src/guest/initramfs.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";

let dirs: TempDir[] = [];
afterEach(async () => {
  await Promise.all(dirs.map((dir) => dir.remove()));
  dirs = [];
});
async function tempDir(): Promise<string> {
  const dir = await makeTempDir("guest-test");
  dirs.push(dir);
  return dir.path;
}

describe("guest kernel", () => {
  it("a boot directory without a cloud kernel is refused naming the package to install", async () => {
    const boot = await tempDir();
    await writeFile(`${boot}/vmlinuz-6.1.0-9-amd64`, "not the cloud flavour");
    await expect(findCloudKernel(boot)).rejects.toMatchObject({
      code: "ERR_KERNEL_MISSING",
      message: expect.stringContaining(boot),
      remedy: expect.stringContaining("apt-get install linux-image-cloud-amd64"),
    });
  });

  it("picks the newest cloud kernel by version, not by name order", async () => {
    const boot = await tempDir();
    for (const version of ["6.1.0-9-cloud-amd64", "6.1.0-56-cloud-amd64", "6.1.0-10-cloud-amd64"]) {
      await writeFile(`${boot}/vmlinuz-${version}`, "");
    }
    expect(await findCloudKernel(boot)).toEqual({ source: `${boot}/vmlinuz-6.1.0-56-cloud-amd64`, version: "6.1.0-56-cloud-amd64" });
  });

  it("finds the LZ4 legacy frame magic inside a bzImage", () => {
    const image = Buffer.concat([Buffer.alloc(1000, 7), Buffer.from([0x02, 0x21, 0x4c, 0x18]), Buffer.alloc(10)]);
    expect(findLz4Payload(image)).toBe(1000);
    expect(findLz4Payload(Buffer.alloc(100))).toBe(-1);
  });

  it("tells a static busybox from a dynamically linked program", async () => {
    expect(await isStaticElf("/bin/busybox")).toBe(true);
    expect(await isStaticElf("/bin/ls")).toBe(false);
  });
});

describe("initramfs", () => {
  it("refuses a dynamically linked busybox", async () => {
    await expect(prepareInitramfs(await tempDir(), { kernelVersion: "x", busyboxPath: "/bin/ls" })).rejects.toMatchObject({
      code: "ERR_INITRAMFS",
      remedy: expect.stringContaining("busybox-static"),
    });
  });

  it("names the kernel module that is missing", async () => {
    const modules = await tempDir();
    await mkdir(`${modules}/6.1.0-1-cloud-amd64/kernel`, { recursive: true });
    await expect(prepareInitramfs(await tempDir(), { kernelVersion: "6.1.0-1-cloud-amd64", modulesRoot: modules })).rejects.toMatchObject({
      code: "ERR_INITRAMFS",
      message: expect.stringContaining("virtio_ring.ko is missing"),
    });
  });
});
