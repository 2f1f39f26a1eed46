import { chmod, chown, lchown, link, lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tar from "tar";
import { describe, expect, it, onTestFinished } from "vitest";
import { applyLayers, type ApplyProgress } from "../../../src/image/layers.js";
import type { LayerRef } from "../../../src/image/oci.js";
import { digestFile } from "../../../src/shared/digest.js";
import { VhiveError, type VhiveErrorCode } from "../../../src/shared/errors.js";
import { makeTempDir } from "../../../src/shared/tmp.js";

const isRoot = process.getuid?.() === 0;

async function tempDir(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  onTestFinished(() => dir.remove());
  return dir.path;
}

/** What a staged layer holds: file contents, or a symlink. Whiteouts are empty files named `.wh.*`. */
type Staged = Record<string, string | { symlink: string }>;

async function stage(files: Staged): Promise<string> {
  const dir = await tempDir("stage");
  for (const [path, spec] of Object.entries(files)) {
    const abs = join(dir, path);
    if (path.endsWith("/")) {
      await mkdir(abs, { recursive: true });
      continue;
    }
    await mkdir(dirname(abs), { recursive: true });
    if (typeof spec === "string") await writeFile(abs, spec);
    else await symlink(spec.symlink, abs);
  }
  return dir;
}

/** Packs a staged directory into a layer blob, as an image builder would. */
async function packLayer(stageDir: string, gzip = true): Promise<LayerRef> {
  const path = join(await tempDir("blob"), gzip ? "layer.tar.gz" : "layer.tar");
  await tar.c({ cwd: stageDir, file: path, gzip }, await readdir(stageDir));
  return { path, digest: await digestFile(path), mediaType: "" };
}

async function layer(files: Staged, gzip = true): Promise<LayerRef> {
  return packLayer(await stage(files), gzip);
}

/** A tar built header by header, for entries no real directory can produce (`..`, absolute). */
async function rawLayer(entries: { path: string; body: string; linkpath?: string }[]): Promise<LayerRef> {
  const blocks: Buffer[] = [];
  for (const { path, body, linkpath } of entries) {
    const header = Buffer.alloc(512);
    const type = linkpath === undefined ? "File" : "Link";
    new tar.Header({ path, type, linkpath, size: body.length, mode: 0o644, uid: 0, gid: 0, mtime: new Date() }).encode(header, 0);
    blocks.push(header, Buffer.from(body), Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return blobOf(Buffer.concat(blocks));
}

async function blobOf(bytes: Buffer): Promise<LayerRef> {
  const path = join(await tempDir("blob"), "blob");
  await writeFile(path, bytes);
  return { path, digest: await digestFile(path), mediaType: "" };
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

async function rejection(promise: Promise<unknown>, code: VhiveErrorCode): Promise<VhiveError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(VhiveError);
  expect((error as VhiveError).code).toBe(code);
  return error as VhiveError;
}

describe("applyLayers: whiteouts", () => {
  it("a .wh. entry deletes a file and a whole directory that a lower layer made", async () => {
    const root = await tempDir("root");
    const lower = await layer({ "etc/motd": "hi", "etc/keep": "k", "opt/tool/bin/run": "#!" });
    const upper = await layer({ "etc/.wh.motd": "", ".wh.opt": "" });
    await applyLayers([lower, upper], root);
    expect(await exists(join(root, "etc/motd"))).toBe(false);
    expect(await readFile(join(root, "etc/keep"), "utf8")).toBe("k");
    expect(await exists(join(root, "opt"))).toBe(false);
    expect(await exists(join(root, "etc/.wh.motd"))).toBe(false);
  });

  it("an opaque directory loses lower layers' entries but keeps its own layer's", async () => {
    const root = await tempDir("root");
    const lower = await layer({ "var/cache/a": "a", "var/cache/sub/b": "b" });
    const upper = await layer({ "var/cache/.wh..wh..opq": "", "var/cache/c": "c" });
    await applyLayers([lower, upper], root);
    expect(await readdir(join(root, "var/cache"))).toEqual(["c"]);
  });

  it("a whiteout does not delete an entry of its own layer", async () => {
    const root = await tempDir("root");
    await applyLayers([await layer({ "x": "mine", ".wh.x": "" })], root);
    expect(await readFile(join(root, "x"), "utf8")).toBe("mine");
  });
});

describe("applyLayers: file metadata", () => {
  it("keeps exact modes, including setuid, sticky and bits the umask would clear", async () => {
    const dir = await stage({ "usr/bin/su": "su", "shared": "rw", "tmp/": "", "ro/": "" });
    // chown first: it clears setuid, which is the trap the extraction must avoid too.
    if (isRoot) await chown(join(dir, "usr/bin/su"), 1234, 5678);
    await chmod(join(dir, "usr/bin/su"), 0o4755);
    await chmod(join(dir, "shared"), 0o666);
    await chmod(join(dir, "tmp"), 0o1777);
    await chmod(join(dir, "ro"), 0o555);
    const root = await tempDir("root");
    await applyLayers([await packLayer(dir)], root);
    const mode = async (p: string) => (await lstat(join(root, p))).mode & 0o7777;
    expect(await mode("usr/bin/su")).toBe(0o4755);
    expect(await mode("shared")).toBe(0o666);
    expect(await mode("tmp")).toBe(0o1777);
    expect(await mode("ro")).toBe(0o555);
  });

  it.runIf(isRoot)("keeps file and symlink ownership when run as root", async () => {
    const dir = await stage({ "home/app/data": "d", "home/app/link": { symlink: "data" } });
    await chown(join(dir, "home/app/data"), 1234, 5678);
    await lchown(join(dir, "home/app/link"), 1234, 5678);
    const root = await tempDir("root");
    await applyLayers([await packLayer(dir)], root);
    for (const p of ["home/app/data", "home/app/link"]) {
      const stats = await lstat(join(root, p));
      expect([stats.uid, stats.gid]).toEqual([1234, 5678]);
    }
  });

  it("keeps symlink targets as written, absolute ones included", async () => {
    const root = await tempDir("root");
    await applyLayers(
      [await layer({ "bin/busybox": "bb", "bin/sh": { symlink: "/bin/busybox" }, "usr/bin/ls": { symlink: "../../bin/busybox" } })],
      root,
    );
    expect(await readlink(join(root, "bin/sh"))).toBe("/bin/busybox");
    expect(await readlink(join(root, "usr/bin/ls"))).toBe("../../bin/busybox");
  });

  it("keeps hard links as one inode", async () => {
    const dir = await stage({ "bin/busybox": "bb" });
    await link(join(dir, "bin/busybox"), join(dir, "bin/ash"));
    const root = await tempDir("root");
    await applyLayers([await packLayer(dir)], root);
    const [a, b] = await Promise.all([stat(join(root, "bin/busybox")), stat(join(root, "bin/ash"))]);
    expect(a.ino).toBe(b.ino);
  });

  it("lets an upper layer replace a lower directory with a symlink and a lower file with a directory", async () => {
    const root = await tempDir("root");
    const lower = await layer({ "lib/x": "x", "data": "file" });
    const upper = await layer({ "lib": { symlink: "usr/lib" }, "data/inner": "i" });
    await applyLayers([lower, upper], root);
    expect(await readlink(join(root, "lib"))).toBe("usr/lib");
    expect(await readFile(join(root, "data/inner"), "utf8")).toBe("i");
  });

  it("lets a file in an upper layer replace a lower layer's whole directory tree", async () => {
    const root = await tempDir("root");
    const lower = await layer({ "srv/www/index.html": "<p>", "srv/www/img/logo.png": "png" });
    const upper = await layer({ "srv/www": "now a file" });
    await applyLayers([lower, upper], root);
    expect(await readFile(join(root, "srv/www"), "utf8")).toBe("now a file");
  });

  it("reads plain tar layers as well as gzip ones", async () => {
    const root = await tempDir("root");
    await applyLayers([await layer({ "a": "plain" }, false), await layer({ "b": "gz" }, true)], root);
    expect(await readFile(join(root, "a"), "utf8")).toBe("plain");
    expect(await readFile(join(root, "b"), "utf8")).toBe("gz");
  });
});

describe("applyLayers: staying inside the root", () => {
  it("puts absolute entries under the root and skips entries that climb out with ..", async () => {
    const outer = await tempDir("outer");
    const root = join(outer, "root");
    await mkdir(root);
    await applyLayers([await rawLayer([{ path: "/abs.txt", body: "a" }, { path: "../escaped.txt", body: "e" }])], root);
    expect(await readFile(join(root, "abs.txt"), "utf8")).toBe("a");
    expect(await exists(join(outer, "escaped.txt"))).toBe(false);
  });

  it("does not write or delete through a lower layer's symlink that points outside the root", async () => {
    const outside = await tempDir("outside");
    await writeFile(join(outside, "victim"), "keep me");
    const root = await tempDir("root");
    const lower = await layer({ "etc": { symlink: outside } });
    const upper = await rawLayer([
      { path: "etc/.wh.victim", body: "" },
      { path: "etc/planted", body: "p" },
    ]);
    await applyLayers([lower, upper], root);
    expect(await readFile(join(outside, "victim"), "utf8")).toBe("keep me");
    expect(await exists(join(outside, "planted"))).toBe(false);
  });
});

describe("applyLayers: bad layers", () => {
  it("applies docker's empty layer (nothing but end-of-archive blocks), plain or gzip, as no change", async () => {
    const root = await tempDir("root");
    await applyLayers([await blobOf(Buffer.alloc(1024)), await blobOf(gzipSync(Buffer.alloc(1024)))], root);
    expect(await readdir(root)).toEqual([]);
  });

  it("fails with ERR_IMAGE_BUILD naming the entry when a write fails, rather than skipping it", async () => {
    const broken = await rawLayer([{ path: "bin/ash", body: "", linkpath: "bin/busybox" }]);
    const error = await rejection(applyLayers([broken], await tempDir("root")), "ERR_IMAGE_BUILD");
    expect(error.message).toContain("layer 0");
    expect(error.message).toContain("bin/ash");
  });


  it("rejects a zstd layer as unsupported, naming the layer", async () => {
    const zstd = await blobOf(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64)]));
    const error = await rejection(applyLayers([zstd], await tempDir("root")), "ERR_IMAGE_INVALID");
    expect(error.message).toContain("zstd");
    expect(error.message).toContain(`layer 0 (${zstd.digest})`);
  });

  it("reports a truncated gzip layer as invalid, naming its index and digest", async () => {
    const good = await layer({ "a": "a".repeat(10_000) });
    const bytes = await readFile(good.path);
    const truncated = await blobOf(bytes.subarray(0, bytes.length >> 1));
    const error = await rejection(applyLayers([good, truncated], await tempDir("root")), "ERR_IMAGE_INVALID");
    expect(error.message).toContain(`layer 1 (${truncated.digest})`);
    expect(error.message).toContain("gzip");
    expect(error.remedy).toBeTruthy();
  });

  it("reports a blob that is not a tar as invalid, naming its index and digest", async () => {
    const junk = await blobOf(Buffer.from("this is not a tar archive at all\n".repeat(40)));
    const error = await rejection(applyLayers([junk], await tempDir("root")), "ERR_IMAGE_INVALID");
    expect(error.message).toContain(`layer 0 (${junk.digest})`);
  });

  it("reports a digest mismatch naming the blob, before changing the root", async () => {
    const root = await tempDir("root");
    const good = await layer({ "a": "a" });
    const wrong = { ...good, digest: `sha256:${"0".repeat(64)}` };
    const error = await rejection(applyLayers([wrong], root), "ERR_IMAGE_INVALID");
    expect(error.message).toContain(good.path);
    expect(error.message).toContain(good.digest);
    expect(await readdir(root)).toEqual([]);
  });

  it("reports a missing blob as invalid, naming the layer", async () => {
    const missing = { path: "/nonexistent/blob", digest: `sha256:${"1".repeat(64)}`, mediaType: "" };
    const error = await rejection(applyLayers([missing], await tempDir("root")), "ERR_IMAGE_INVALID");
    expect(error.message).toContain("layer 0");
    expect(error.message).toContain("/nonexistent/blob");
  });
});

describe("applyLayers: progress and cancellation", () => {
  it("reports each layer as it starts, in order", async () => {
    const layers = [await layer({ "a": "1" }), await layer({ "b": "2" })];
    const seen: ApplyProgress[] = [];
    await applyLayers(layers, await tempDir("root"), { onProgress: (p) => seen.push(p) });
    expect(seen).toEqual([
      { layerIndex: 0, layerCount: 2, digest: layers[0]?.digest },
      { layerIndex: 1, layerCount: 2, digest: layers[1]?.digest },
    ]);
  });

  it("stops with ERR_ABORTED when the signal is already aborted", async () => {
    const root = await tempDir("root");
    await rejection(applyLayers([await layer({ "a": "1" })], root, { signal: AbortSignal.abort() }), "ERR_ABORTED");
    expect(await readdir(root)).toEqual([]);
  });

  it("stops with ERR_ABORTED when the signal fires mid-layer", async () => {
    const big = await layer({ "big": "x".repeat(1 << 20), "more": "y".repeat(1 << 20) }, false);
    const controller = new AbortController();
    const applying = applyLayers([big], await tempDir("root"), {
      signal: controller.signal,
      onProgress: () => queueMicrotask(() => controller.abort()),
    });
    await rejection(applying, "ERR_ABORTED");
  });
});

