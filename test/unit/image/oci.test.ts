import { lstat, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as tar from "tar";
import { describe, expect, it, onTestFinished } from "vitest";
import { applyLayers } from "../../../src/image/layers.js";
import { openImageArchive, type OpenedImage } from "../../../src/image/oci.js";
import { digestBytes, digestHex } from "../../../src/shared/digest.js";
import { VhiveError, type VhiveErrorCode } from "../../../src/shared/errors.js";
import { makeTempDir } from "../../../src/shared/tmp.js";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

async function tempDir(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  onTestFinished(() => dir.remove());
  return dir.path;
}

async function open(path: string, options?: { ref?: string }): Promise<OpenedImage> {
  const image = await openImageArchive(path, options);
  onTestFinished(() => image.close());
  return image;
}

async function writeFiles(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

/** A layer tar's bytes, made by node-tar from files staged in a temp dir. */
async function layerBytes(files: Record<string, string>, gzip = true): Promise<Buffer> {
  const staged = await tempDir("stage");
  await writeFiles(staged, files);
  const out = join(await tempDir("layer"), "layer.tar");
  await tar.c({ cwd: staged, file: out, gzip }, await readdir(staged));
  return readFile(out);
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string };
}

/** Stores `content` (JSON if an object) under blobs/sha256 and returns its descriptor. */
async function putBlob(layout: string, mediaType: string, content: Buffer | object): Promise<Descriptor> {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(JSON.stringify(content));
  const digest = digestBytes(bytes);
  await writeFiles(layout, { [`blobs/sha256/${digestHex(digest)}`]: bytes });
  return { mediaType, digest, size: bytes.length };
}

/** An image manifest with its config and layers, stored as blobs; returns the manifest's descriptor. */
async function putImage(layout: string, config: object, layers: Buffer[]): Promise<Descriptor> {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: await putBlob(layout, OCI_CONFIG, config),
    layers: await Promise.all(layers.map((bytes) => putBlob(layout, OCI_LAYER_GZIP, bytes))),
  };
  return putBlob(layout, OCI_MANIFEST, manifest);
}

async function writeIndex(layout: string, manifests: Descriptor[]): Promise<void> {
  await writeFiles(layout, {
    "oci-layout": JSON.stringify({ imageLayoutVersion: "1.0.0" }),
    "index.json": JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }),
  });
}

const simpleConfig = { architecture: "amd64", os: "linux", config: { Cmd: ["/bin/sh"] } };

/** An OCI layout with one image of one layer. */
async function simpleLayout(): Promise<{ layout: string; manifest: Descriptor }> {
  const layout = await tempDir("layout");
  const manifest = await putImage(layout, simpleConfig, [await layerBytes({ "hello.txt": "hi" })]);
  await writeIndex(layout, [{ ...manifest, annotations: { "org.opencontainers.image.ref.name": "latest" } }]);
  return { layout, manifest };
}

async function rejection(promise: Promise<unknown>, code: VhiveErrorCode, ...fragments: string[]): Promise<VhiveError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(VhiveError);
  const vhiveError = error as VhiveError;
  expect(vhiveError.code).toBe(code);
  for (const fragment of fragments) expect(vhiveError.message).toContain(fragment);
  if (code === "ERR_IMAGE_INVALID") expect(vhiveError.remedy).toBeTruthy();
  return vhiveError;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

describe("openImageArchive: OCI layouts", () => {
  it("opens a two-layer layout whose upper layer deletes a file and empties an opaque dir but keeps its own file there", async () => {
    const layout = await tempDir("layout");
    const lower = await layerBytes({ "etc/motd": "hello", "etc/hostname": "vm", "var/cache/old": "o", "var/cache/sub/deep": "d" });
    const upper = await layerBytes({ "etc/.wh.motd": "", "var/cache/.wh..wh..opq": "", "var/cache/new": "n" });
    const manifest = await putImage(layout, simpleConfig, [lower, upper]);
    await writeIndex(layout, [{ ...manifest, annotations: { "org.opencontainers.image.ref.name": "app:1" } }]);

    const image = await open(layout);
    expect(image.kind).toBe("oci");
    expect(image.digest).toBe(manifest.digest);
    expect(image.name).toBe("app:1");
    expect(image.layers.map((l) => l.mediaType)).toEqual([OCI_LAYER_GZIP, OCI_LAYER_GZIP]);
    expect(image.layers[0]?.digest).toBe(digestBytes(lower));

    const root = await tempDir("root");
    await applyLayers(image.layers, root);
    expect(await exists(join(root, "etc/motd"))).toBe(false);
    expect(await readFile(join(root, "etc/hostname"), "utf8")).toBe("vm");
    expect(await readdir(join(root, "var/cache"))).toEqual(["new"]);
  });

  it("turns the config into entrypoint, cmd, env, workdir, sorted TCP ports and labels", async () => {
    const layout = await tempDir("layout");
    const config = {
      architecture: "amd64",
      os: "linux",
      config: {
        Entrypoint: ["/usr/bin/server", "--flag"],
        Cmd: ["--port", "8080"],
        Env: ["PATH=/usr/bin:/bin", "OPTS=a=b=c", "EMPTY="],
        WorkingDir: "/srv",
        ExposedPorts: { "9090/tcp": {}, "53/udp": {}, "8080/tcp": {}, "7000": {} },
        Labels: { "dev.vhive.protocol": "grpc", "org.example": "x" },
      },
    };
    await writeIndex(layout, [await putImage(layout, config, [])]);
    const image = await open(layout);
    expect(image.config).toEqual({
      entrypoint: ["/usr/bin/server", "--flag"],
      cmd: ["--port", "8080"],
      env: { PATH: "/usr/bin:/bin", OPTS: "a=b=c", EMPTY: "" },
      workdir: "/srv",
      exposedPorts: [7000, 8080, 9090],
      labels: { "dev.vhive.protocol": "grpc", "org.example": "x" },
    });
  });

  it("defaults a config without runtime fields to empty lists and workdir /", async () => {
    const layout = await tempDir("layout");
    await writeIndex(layout, [await putImage(layout, { architecture: "amd64", os: "linux", config: { Env: null } }, [])]);
    const image = await open(layout);
    expect(image.config).toEqual({ entrypoint: [], cmd: [], env: {}, workdir: "/", exposedPorts: [], labels: {} });
    expect(image.name).toBeUndefined();
  });

  it("opens a manifest with zero layers as an empty root filesystem", async () => {
    const layout = await tempDir("layout");
    await writeIndex(layout, [await putImage(layout, simpleConfig, [])]);
    const image = await open(layout);
    expect(image.layers).toEqual([]);
    const root = await tempDir("root");
    await applyLayers(image.layers, root);
    expect(await readdir(root)).toEqual([]);
  });

  it("picks the image whose ref.name matches ref when the index lists several", async () => {
    const layout = await tempDir("layout");
    const one = await putImage(layout, { config: { Cmd: ["one"] } }, []);
    const two = await putImage(layout, { config: { Cmd: ["two"] } }, []);
    const ref = (name: string) => ({ "org.opencontainers.image.ref.name": name });
    await writeIndex(layout, [
      { ...one, annotations: ref("one") },
      { ...two, annotations: ref("two") },
    ]);
    const image = await open(layout, { ref: "two" });
    expect(image.config.cmd).toEqual(["two"]);
    expect(image.name).toBe("two");
    await rejection(openImageArchive(layout), "ERR_IMAGE_AMBIGUOUS", "one", "two");
    await rejection(openImageArchive(layout, { ref: "three" }), "ERR_IMAGE_NOT_FOUND", "three", "index.json");
  });

  it("follows a nested image index to its linux/amd64 manifest", async () => {
    const layout = await tempDir("layout");
    const arm = await putImage(layout, { config: { Cmd: ["arm64"] } }, []);
    const amd = await putImage(layout, { config: { Cmd: ["amd64"] } }, []);
    const nested = await putBlob(layout, OCI_INDEX, {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { ...arm, platform: { os: "linux", architecture: "arm64" } },
        { ...amd, platform: { os: "linux", architecture: "amd64" } },
      ],
    });
    await writeIndex(layout, [{ ...nested, annotations: { "org.opencontainers.image.ref.name": "multi" } }]);
    const image = await open(layout);
    expect(image.config.cmd).toEqual(["amd64"]);
    expect(image.digest).toBe(amd.digest);
    expect(image.name).toBe("multi");
  });

  it("opens a tar of an OCI layout and removes its temp dir on close", async () => {
    const { layout, manifest } = await simpleLayout();
    const tarPath = join(await tempDir("tar"), "image.tar");
    await tar.c({ cwd: layout, file: tarPath }, await readdir(layout));
    const image = await openImageArchive(tarPath);
    expect(image.kind).toBe("oci");
    expect(image.digest).toBe(manifest.digest);
    const root = await tempDir("root");
    await applyLayers(image.layers, root);
    expect(await readFile(join(root, "hello.txt"), "utf8")).toBe("hi");
    await image.close();
    await image.close();
    expect(await exists(image.layers[0]?.path ?? "")).toBe(false);
  });
});

describe("openImageArchive: docker-archive", () => {
  /** What `docker save` wrote before v25: manifest.json, <id>/layer.tar (plain tar), <hex>.json. */
  async function dockerArchive(files: Record<string, string | Buffer>): Promise<string> {
    const staged = await tempDir("docker");
    await writeFiles(staged, files);
    const tarPath = join(await tempDir("tar"), "img.tar");
    await tar.c({ cwd: staged, file: tarPath }, await readdir(staged));
    return tarPath;
  }

  it("opens a docker save tar with uncompressed layers, computing layer digests", async () => {
    const base = await layerBytes({ "etc/os-release": "debian", "bin/old": "x" }, false);
    const app = await layerBytes({ "app/main": "run", "bin/.wh.old": "" }, false);
    const config = JSON.stringify({ architecture: "amd64", os: "linux", config: { Entrypoint: ["/app/main"], WorkingDir: "/app" } });
    const tarPath = await dockerArchive({
      "manifest.json": JSON.stringify([{ Config: "cfg.json", RepoTags: ["app:1", "app:latest"], Layers: ["aaa/layer.tar", "bbb/layer.tar"] }]),
      "cfg.json": config,
      "aaa/layer.tar": base,
      "bbb/layer.tar": app,
    });
    const image = await open(tarPath);
    expect(image.kind).toBe("docker-archive");
    expect(image.name).toBe("app:1");
    expect(image.digest).toBe(digestBytes(config));
    expect(image.config.entrypoint).toEqual(["/app/main"]);
    expect(image.config.workdir).toBe("/app");
    expect(image.layers.map((l) => [l.digest, l.mediaType])).toEqual([
      [digestBytes(base), ""],
      [digestBytes(app), ""],
    ]);
    const root = await tempDir("root");
    await applyLayers(image.layers, root);
    expect(await readFile(join(root, "app/main"), "utf8")).toBe("run");
    expect(await exists(join(root, "bin/old"))).toBe(false);
  });

  it("rejects a tar with neither manifest.json nor index.json, naming manifest.json", async () => {
    const tarPath = await dockerArchive({ "README": "not an image" });
    await rejection(openImageArchive(tarPath), "ERR_IMAGE_INVALID", "manifest.json", tarPath);
  });

  it("rejects a manifest.json layer path that points outside the archive", async () => {
    const tarPath = await dockerArchive({
      "manifest.json": JSON.stringify([{ Config: "cfg.json", RepoTags: null, Layers: ["../../etc/passwd"] }]),
      "cfg.json": "{}",
    });
    await rejection(openImageArchive(tarPath), "ERR_IMAGE_INVALID", "Layers[0]", "outside");
  });

  it("rejects a missing layer file, naming it and manifest.json", async () => {
    const tarPath = await dockerArchive({
      "manifest.json": JSON.stringify([{ Config: "cfg.json", RepoTags: [], Layers: ["gone/layer.tar"] }]),
      "cfg.json": "{}",
    });
    await rejection(openImageArchive(tarPath), "ERR_IMAGE_INVALID", "gone/layer.tar", "manifest.json");
  });

  it("rejects a file that is not a tar, naming it", async () => {
    const path = join(await tempDir("junk"), "img.tar");
    await writeFile(path, "definitely not a tar\n".repeat(100));
    await rejection(openImageArchive(path), "ERR_IMAGE_INVALID", path, "not a readable tar");
  });
});

describe("openImageArchive: malformed OCI layouts", () => {
  it("rejects a path that does not exist", async () => {
    const path = join(await tempDir("none"), "missing");
    await rejection(openImageArchive(path), "ERR_IMAGE_INVALID", path, "does not exist");
  });

  it("rejects a path that is neither a directory nor a file", async () => {
    await rejection(openImageArchive("/dev/null"), "ERR_IMAGE_INVALID", "/dev/null", "neither");
  });

  it("rejects a directory without index.json, naming it", async () => {
    const { layout } = await simpleLayout();
    await rm(join(layout, "index.json"));
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", layout, "no index.json");
  });

  it("rejects a directory without oci-layout, naming it", async () => {
    const { layout } = await simpleLayout();
    await rm(join(layout, "oci-layout"));
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", "oci-layout");
  });

  it("rejects index.json that is not JSON, naming the file", async () => {
    const { layout } = await simpleLayout();
    await writeFile(join(layout, "index.json"), "{ nope");
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", join(layout, "index.json"), "not valid JSON");
  });

  it("rejects index.json with a malformed digest, naming the file and field", async () => {
    const { layout, manifest } = await simpleLayout();
    await writeIndex(layout, [{ ...manifest, digest: "md5:abc" }]);
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", "index.json", "manifests[0].digest");
  });

  it("rejects a missing manifest blob, naming it and index.json", async () => {
    const { layout, manifest } = await simpleLayout();
    await rm(join(layout, "blobs/sha256", digestHex(manifest.digest)));
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", digestHex(manifest.digest), "index.json", "missing");
  });

  it("rejects a manifest blob whose bytes do not match its digest", async () => {
    const { layout, manifest } = await simpleLayout();
    await writeFile(join(layout, "blobs/sha256", digestHex(manifest.digest)), "{}");
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", digestHex(manifest.digest), "has digest");
  });

  it("rejects a missing layer blob, naming the layer", async () => {
    const layout = await tempDir("layout");
    const bytes = await layerBytes({ "a": "a" });
    const manifest = await putImage(layout, simpleConfig, [bytes]);
    await rm(join(layout, "blobs/sha256", digestHex(digestBytes(bytes))));
    await writeIndex(layout, [manifest]);
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", digestHex(digestBytes(bytes)), "layer 0", "missing");
  });

  it("rejects a missing config blob, naming it as the image config", async () => {
    const layout = await tempDir("layout");
    const manifest = await putImage(layout, simpleConfig, []);
    await rm(join(layout, "blobs/sha256", digestHex(digestBytes(JSON.stringify(simpleConfig)))));
    await writeIndex(layout, [manifest]);
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", "image config", "missing");
  });

  it("rejects a config whose Env is not a list, naming the blob and field", async () => {
    const layout = await tempDir("layout");
    const config = { config: { Env: "PATH=/bin" } };
    await writeIndex(layout, [await putImage(layout, config, [])]);
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", digestHex(digestBytes(JSON.stringify(config))), "config.Env");
  });

  it("rejects an exposed port that is not PORT/PROTOCOL, naming the field", async () => {
    const layout = await tempDir("layout");
    await writeIndex(layout, [await putImage(layout, { config: { ExposedPorts: { "http/tcp": {} } } }, [])]);
    await rejection(openImageArchive(layout), "ERR_IMAGE_INVALID", "config.ExposedPorts", "http/tcp");
  });
});
