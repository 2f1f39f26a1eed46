/**
 * `vhive image export` on a small real image (ext4 made by mkfs.ext4 -d, read back with
 * debugfs): the archive's layout, config and labels, the layer's entries read back with node-tar
 * (another tar implementation than the one that wrote them), the round trip through
 * `vhive image import`, and the failures. Needs root (the image has device nodes and owners).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import * as tar from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportImage, importImage, type StoredImage } from "../../../src/image/index.js";
import { DEFAULT_PATH } from "../../../src/image/config.js";
import { digestBytes, digestHex } from "../../../src/shared/digest.js";
import { StatePaths } from "../../../src/shared/paths.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { FIXED_TIME, LONG_PATH, SLOW_TARGET, TINY_CONFIG, TINY_PROTO, UNICODE_NAME, makeTinyImage } from "../test-shared/tiny-image.js";

let state: TempDir;
let out: TempDir;
let paths: StatePaths;
let image: StoredImage;
let archive: string;

beforeAll(async () => {
  state = await makeTempDir("export-state");
  out = await makeTempDir("export-out");
  paths = new StatePaths(state.path);
  image = await makeTinyImage(paths);
  archive = join(out.path, "tiny.tar");
  await exportImage(paths, "tiny", archive);
});
afterAll(async () => {
  await state.remove();
  await out.remove();
});

/** The archive's members by path. */
async function members(path: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  await tar.t({
    file: path,
    onReadEntry: (entry) => {
      const chunks: Buffer[] = [];
      entry.on("data", (chunk: Buffer) => chunks.push(chunk));
      entry.on("end", () => found.set(entry.path, Buffer.concat(chunks)));
    },
  });
  return found;
}

interface LayerEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date | undefined;
  linkpath: string | undefined;
  device: [number, number];
  content: string;
}

async function layerEntries(blob: Buffer): Promise<Map<string, LayerEntry>> {
  const dir = await makeTempDir("layer");
  try {
    await writeFile(join(dir.path, "layer.tar.gz"), blob);
    const found = new Map<string, LayerEntry>();
    await tar.t({
      file: join(dir.path, "layer.tar.gz"),
      onReadEntry: (entry) => {
        const chunks: Buffer[] = [];
        entry.on("data", (chunk: Buffer) => chunks.push(chunk));
        entry.on("end", () =>
          found.set(entry.path, {
            type: entry.type,
            mode: entry.mode ?? -1,
            uid: entry.uid ?? -1,
            gid: entry.gid ?? -1,
            mtime: entry.mtime,
            linkpath: entry.linkpath,
            device: [entry.header.devmaj ?? -1, entry.header.devmin ?? -1],
            content: Buffer.concat(chunks).toString(),
          }),
        );
      },
    });
    return found;
  } finally {
    await dir.remove();
  }
}

function blob(files: Map<string, Buffer>, digest: string): Buffer {
  const bytes = files.get(`blobs/sha256/${digestHex(digest)}`);
  if (bytes === undefined) throw new Error(`the archive has no blob ${digest}`);
  expect(digestBytes(bytes)).toBe(digest);
  return bytes;
}

async function readLayout(path: string) {
  const files = await members(path);
  const json = (name: string) => JSON.parse(files.get(name)!.toString());
  const index = json("index.json");
  const manifest = JSON.parse(blob(files, index.manifests[0].digest).toString());
  const config = JSON.parse(blob(files, manifest.config.digest).toString());
  const layer = blob(files, manifest.layers[0].digest);
  return { files, index, manifest, config, layer, json };
}

describe("vhive image export", () => {
  it("writes an OCI image layout whose index names the image and whose config runs the function as the guest does", async () => {
    const { files, index, manifest, config, layer, json } = await readLayout(archive);
    expect(json("oci-layout")).toEqual({ imageLayoutVersion: "1.0.0" });
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]).toMatchObject({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      platform: { architecture: "amd64", os: "linux" },
      annotations: { "io.containerd.image.name": "vhive.local/tiny:latest", "org.opencontainers.image.ref.name": "latest" },
    });
    expect(manifest.config.mediaType).toBe("application/vnd.oci.image.config.v1+json");
    expect(manifest.layers).toEqual([{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: digestBytes(layer), size: layer.length }]);
    expect(config.rootfs).toEqual({ type: "layers", diff_ids: [`sha256:${createHash("sha256").update(gunzipSync(layer)).digest("hex")}`] });
    expect(config).toMatchObject({ architecture: "amd64", os: "linux", created: image.createdAt });
    expect(config.config).toEqual({
      Entrypoint: TINY_CONFIG.argv,
      Env: [`PATH=${DEFAULT_PATH}`, "HOME=/root", "GREETING=a=b"],
      WorkingDir: "/app",
      ExposedPorts: { "8080/tcp": {} },
      Labels: {
        "dev.vhive.schema": "1",
        "dev.vhive.protocol": "http",
        "dev.vhive.port": "8080",
        "dev.vhive.http.path": "/index.html",
        "dev.vhive.mem-mib": "128",
        "dev.vhive.inputs": '["one","two"]',
        "dev.vhive.proto.name": "tiny.proto",
        "dev.vhive.proto": TINY_PROTO,
      },
    });
    // docker-archive's manifest.json names the same blobs.
    expect(json("manifest.json")).toEqual([
      { Config: `blobs/sha256/${digestHex(manifest.config.digest)}`, RepoTags: ["vhive.local/tiny:latest"], Layers: [`blobs/sha256/${digestHex(manifest.layers[0].digest)}`] },
    ]);
    expect([...files.keys()].filter((name) => !name.startsWith("blobs/")).sort()).toEqual(["index.json", "manifest.json", "oci-layout"]);
  });

  it("carries modes, owners, times, symlinks, hard links and device nodes as they are in the ext4 image", async () => {
    const entries = await layerEntries((await readLayout(archive)).layer);
    const entry = (path: string): LayerEntry => {
      const found = entries.get(path);
      if (found === undefined) throw new Error(`the layer has no ${path}; it has ${[...entries.keys()].join(", ")}`);
      return found;
    };
    expect(entry("bin/setuid")).toMatchObject({ type: "File", mode: 0o4755, uid: 0, gid: 0, content: "#!/bin/sh\n" });
    expect(entry("tmp/")).toMatchObject({ type: "Directory", mode: 0o1777 });
    expect(entry("etc/owned")).toMatchObject({ type: "File", mode: 0o640, uid: 1234, gid: 5678, mtime: FIXED_TIME, content: "owned\n" });
    expect(entry("etc/big-ids")).toMatchObject({ uid: 300_000, gid: 300_001 });
    expect(entry("etc/no-mode")).toMatchObject({ type: "File", mode: 0 });
    expect(entry("etc/hard-a")).toMatchObject({ type: "File", content: "two names\n" });
    expect(entry("etc/hard-b")).toMatchObject({ type: "Link", linkpath: "etc/hard-a" });
    expect(entry("bin/sh")).toMatchObject({ type: "SymbolicLink", linkpath: "busybox" });
    expect(entry("abs-link")).toMatchObject({ type: "SymbolicLink", linkpath: "/bin/busybox" });
    expect(entry("slow-link")).toMatchObject({ type: "SymbolicLink", linkpath: SLOW_TARGET });
    expect(entry("dev/null")).toMatchObject({ type: "CharacterDevice", mode: 0o666, device: [1, 3] });
    expect(entry("run/fifo")).toMatchObject({ type: "FIFO" });
    expect(entry(LONG_PATH)).toMatchObject({ type: "File", content: "long\n" });
    expect(entry(UNICODE_NAME)).toMatchObject({ type: "File", content: "unicode\n" });
    expect(entry("bin/busybox").content).toBe((await readFile("/bin/busybox")).toString());
    // Left out: vhive's entry script, ext4's lost+found, and the socket no tar can hold; in
    // their place vhive's function config and .proto, for runtimes that see only the rootfs.
    const paths = [...entries.keys()];
    expect(paths.filter((path) => /^(\.vhive|lost\+found)(\/|$)/.test(path) || path === "run/sock")).toEqual([".vhive/", ".vhive/function.json", ".vhive/tiny.proto"]);
    expect(JSON.parse(entry(".vhive/function.json").content!)).toMatchObject({ port: image.config.port, protocol: image.config.protocol });
    // Parents come before their children, in one fixed order.
    expect(paths).toEqual([...paths].sort());
  });

  it("reports what the tar cannot carry, and gives the same bytes each time for the same image and name", async () => {
    const again = await exportImage(paths, image.id, join(out.path, "again.tar"));
    expect(again.layer.lost.sockets).toEqual(["run/sock"]);
    expect(again.layer.lost.xattrPaths).toEqual([]);
    expect(again.layer.counts).toMatchObject({ hardLinks: 1, devices: 1 });
    expect((await readFile(again.path)).equals(await readFile(archive)), "the two archives differ").toBe(true);
  });

  it("--name sets the reference, with the domain and tag it gives", async () => {
    const named = await exportImage(paths, "tiny", join(out.path, "named.tar"), { ref: "registry.example:5000/team/tiny:v2" });
    expect(named.ref.full).toBe("registry.example:5000/team/tiny:v2");
    const { index, json } = await readLayout(named.path);
    expect(index.manifests[0].annotations).toEqual({ "io.containerd.image.name": "registry.example:5000/team/tiny:v2", "org.opencontainers.image.ref.name": "v2" });
    expect(json("manifest.json")[0].RepoTags).toEqual(["registry.example:5000/team/tiny:v2"]);
    await expect(exportImage(paths, "tiny", join(out.path, "bad.tar"), { ref: "Upper/Case" })).rejects.toMatchObject({ code: "ERR_VALIDATION" });
  });

  it("vhive image import of the archive restores the function's protocol, port, inputs and .proto from its labels", async () => {
    const imported = await importImage(paths, archive);
    expect(imported.name).toBe("vhive.local/tiny:latest");
    expect(imported.config).toEqual({ ...TINY_CONFIG, env: { PATH: DEFAULT_PATH, HOME: "/root", GREETING: "a=b" } });
    expect(await readFile(imported.protoPath!, "utf8")).toBe(TINY_PROTO);
    // Options still win over labels.
    const overridden = await importImage(paths, archive, { port: 9000, protocol: "grpc", method: "tiny.Tiny/Call" });
    expect(overridden.config).toMatchObject({ port: 9000, protocol: "grpc", method: "tiny.Tiny/Call", inputs: ["one", "two"] });
  });
});

describe("vhive image export failures", () => {
  it("an unknown image is refused before anything is written", async () => {
    const dest = join(out.path, "unknown.tar");
    await expect(exportImage(paths, "no-such-image", dest)).rejects.toMatchObject({ code: "ERR_IMAGE_NOT_FOUND" });
    await expect(readdir(out.path)).resolves.not.toContain("unknown.tar");
  });

  it("a destination that cannot be written is refused, naming why", async () => {
    await expect(exportImage(paths, "tiny", join(out.path, "missing-dir", "x.tar"))).rejects.toMatchObject({
      code: "ERR_IMAGE_EXPORT",
      message: expect.stringContaining(`the directory ${join(out.path, "missing-dir")} does not exist`),
    });
    await writeFile(join(out.path, "a-file"), "");
    await expect(exportImage(paths, "tiny", join(out.path, "a-file", "x.tar"))).rejects.toMatchObject({
      code: "ERR_IMAGE_EXPORT",
      message: expect.stringContaining("is not a directory"),
    });
    await mkdir(join(out.path, "a-dir"));
    await expect(exportImage(paths, "tiny", join(out.path, "a-dir"))).rejects.toMatchObject({
      code: "ERR_IMAGE_EXPORT",
      message: expect.stringContaining("is a directory"),
    });
  });

  it("cancelled while the layer is written, it leaves no archive and no temp files", async () => {
    const dir = await makeTempDir("export-cancel");
    try {
      const controller = new AbortController();
      const dest = join(dir.path, "cancelled.tar");
      const exported = exportImage(paths, "tiny", dest, {
        signal: controller.signal,
        onProgress: (line) => {
          if (line.startsWith("writing the layer")) controller.abort();
        },
      });
      await expect(exported).rejects.toMatchObject({ code: "ERR_ABORTED" });
      expect(await readdir(dir.path)).toEqual([]);
      expect(await readdir(paths.tmpDir)).toEqual([]);
    } finally {
      await dir.remove();
    }
  });

  it("a damaged rootfs fails with what debugfs said, and leaves nothing behind", async () => {
    const damaged = await makeTinyImage(paths, "damaged");
    await truncate(damaged.rootfsPath, 4096);
    const dir = await makeTempDir("export-damaged");
    try {
      const failure = exportImage(paths, "damaged", join(dir.path, "damaged.tar"));
      await expect(failure).rejects.toMatchObject({ code: "ERR_IMAGE_EXPORT", details: expect.stringMatching(/\S/) });
      expect(await readdir(dir.path)).toEqual([]);
      expect(await readdir(paths.tmpDir)).toEqual([]);
    } finally {
      await dir.remove();
    }
  });
});
