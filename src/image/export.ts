/**
 * Exporting a vhive image as an OCI image archive: a tar of an OCI image layout that
 * `ctr images import` and `vhive image import` read, with docker-archive's manifest.json beside
 * it for `docker load` (docker save has written both since v25).
 *
 *   oci-layout                 {"imageLayoutVersion":"1.0.0"}
 *   index.json                 one manifest, annotated io.containerd.image.name = the full
 *                              reference (vhive.local/helloworld:latest) and
 *                              org.opencontainers.image.ref.name = its tag (latest), as docker save does
 *   manifest.json              docker-archive's list: Config, RepoTags [reference], Layers
 *   blobs/sha256/<manifest>    application/vnd.oci.image.manifest.v1+json
 *   blobs/sha256/<config>      Entrypoint, Env, WorkingDir, ExposedPorts, Labels (labels.ts), rootfs.diff_ids
 *   blobs/sha256/<layer>       the root filesystem, one gzip tar (layer-writer.ts)
 *
 * The layer is read out of rootfs.ext4 with debugfs (ext4-tree.ts), without mounting it. vhive's
 * own /.vhive (the entry script, written again from the config on import) and ext4's lost+found
 * are left out; in their place the layer carries /.vhive/function.json (port, protocol, method,
 * inputs: what the labels say, for runtimes that see only the root filesystem, such as the
 * containerd shim) and the .proto beside it. The archive is written in a temp directory beside the destination and renamed
 * into place, so no partial archive is ever left under the destination's name.
 *
 * Throws ERR_IMAGE_NOT_FOUND, ERR_IMAGE_AMBIGUOUS (no such image), ERR_VALIDATION (a bad
 * reference), ERR_IMAGE_EXPORT (the destination cannot be written, the image cannot be read),
 * ERR_TOOL_MISSING (debugfs), ERR_ABORTED.
 */
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import * as tar from "tar";
import { digestBytes, digestHex } from "../shared/digest.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { StatePaths } from "../shared/paths.js";
import { makeTempDir, type TempDir } from "../shared/tmp.js";
import { DEFAULT_PATH, type FunctionConfig } from "./config.js";
import { readExt4Tree, type TreeEntry } from "./ext4-tree.js";
import { functionLabels } from "./labels.js";
import { writeLayer, type LayerBlob } from "./layer-writer.js";
import { parseImageReference, type ImageReference } from "./reference.js";
import { ImageStore, type StoredImage } from "./store.js";

export interface ExportOptions {
  /** The reference the archive names the image by; default vhive.local/<image name>:latest. */
  ref?: string;
  signal?: AbortSignal;
  onProgress?: (line: string) => void;
}

export interface ExportedImage {
  /** Absolute path of the archive written. */
  path: string;
  image: StoredImage;
  ref: ImageReference;
  manifestDigest: string;
  configDigest: string;
  layer: LayerBlob;
  archiveBytes: number;
}

const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;
/** containerd's name annotation, which `ctr images import` names the image by. */
const CONTAINERD_NAME = "io.containerd.image.name";
const REF_NAME = "org.opencontainers.image.ref.name";
/** Paths at the root that are vhive's or ext4's, not the function's. */
const LEFT_OUT = new Set([".vhive", "lost+found"]);
/** vhive guests are x86-64 (qemu-system-x86_64), and images are built for them. */
const PLATFORM = { architecture: "amd64", os: "linux" } as const;
const DESTINATION_REMEDY = "Give a file path in an existing directory you can write, e.g. ./helloworld.tar.";

export async function exportImage(paths: StatePaths, imageRef: string, destination: string, options: ExportOptions = {}): Promise<ExportedImage> {
  const { signal, onProgress } = options;
  const image = await new ImageStore(paths).resolve(imageRef);
  const ref = parseImageReference(options.ref ?? image.name, options.ref === undefined ? `the image's name (pass --name to give another)` : "--name");
  const target = resolve(destination);
  await using outDir = await claimDestination(target);
  await mkdir(paths.tmpDir, { recursive: true });
  await using work = await makeTempDir("export", paths.tmpDir);
  const contentDir = join(work.path, "content");
  const layoutDir = join(work.path, "layout");
  const blobsDir = join(layoutDir, "blobs", "sha256");
  await mkdir(contentDir);
  await mkdir(blobsDir, { recursive: true });

  onProgress?.("reading the root filesystem (debugfs)");
  const protoText = image.protoPath === undefined ? undefined : await readFile(image.protoPath, "utf8");
  const entries = [...(await readExt4Tree(image.rootfsPath, contentDir, signal)).filter(isFunctionEntry), ...(await vhiveEntries(image, contentDir, protoText))].sort((a, b) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
  );
  onProgress?.(`writing the layer (${entries.length} entries, gzip)`);
  const layerTemp = join(blobsDir, "layer.partial");
  const layer = await writeLayer(entries, contentDir, layerTemp, signal);
  await rename(layerTemp, join(blobsDir, digestHex(layer.digest)));
  await rm(contentDir, { recursive: true, force: true }); // the copied files, as large as the image

  const config = await putJsonBlob(blobsDir, imageConfig(image, layer, protoText));
  const manifest = await putJsonBlob(blobsDir, {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: config.digest, size: config.size },
    layers: [{ mediaType: MEDIA.layer, digest: layer.digest, size: layer.sizeBytes }],
  });
  await writeJson(join(layoutDir, "oci-layout"), { imageLayoutVersion: "1.0.0" });
  await writeJson(join(layoutDir, "index.json"), {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: manifest.digest,
        size: manifest.size,
        platform: PLATFORM,
        annotations: { [CONTAINERD_NAME]: ref.full, [REF_NAME]: ref.tag },
      },
    ],
  });
  // docker-archive's index of the same blobs, so `docker load` without an OCI reader takes it too.
  await writeJson(join(layoutDir, "manifest.json"), [
    { Config: blobRel(config.digest), RepoTags: [ref.full], Layers: [blobRel(layer.digest)] },
  ]);

  onProgress?.(`writing ${target}`);
  const archive = join(outDir.path, basename(target));
  await writeArchive(layoutDir, archive, new Date(image.createdAt), signal);
  await rename(archive, target).catch((error: unknown) => {
    throw destinationError(target, error);
  });
  return {
    path: target,
    image,
    ref,
    manifestDigest: manifest.digest,
    configDigest: config.digest,
    layer,
    archiveBytes: (await stat(target)).size,
  };
}

/**
 * /.vhive/function.json and the .proto, written into contentDir as the layer expects its files.
 * Inodes past any ext4's, so no entry is taken for a hard link of another.
 */
async function vhiveEntries(image: StoredImage, contentDir: string, protoText: string | undefined): Promise<TreeEntry[]> {
  const { port, protocol, method, proto, httpPath, memMib, inputs } = image.config;
  const files: [string, string][] = [[".vhive/function.json", JSON.stringify({ name: image.name, port, protocol, method, proto, httpPath, memMib, inputs }, null, 2) + "\n"]];
  if (proto !== undefined && protoText !== undefined) files.push([`.vhive/${proto}`, protoText]);
  await mkdir(join(contentDir, ".vhive"), { recursive: true });
  const mtimeSec = Math.floor(new Date(image.createdAt).getTime() / 1000);
  const entry = (path: string, inode: number, kind: "file" | "directory", sizeBytes: number): TreeEntry => ({ path, inode, kind, mode: kind === "file" ? 0o644 : 0o755, uid: 0, gid: 0, mtimeSec, sizeBytes, hasXattrs: false });
  const entries = [entry(".vhive", 2 ** 32, "directory", 0)];
  for (const [index, [path, text]] of files.entries()) {
    await writeFile(join(contentDir, path), text);
    entries.push(entry(path, 2 ** 32 + 1 + index, "file", Buffer.byteLength(text)));
  }
  return entries;
}

function isFunctionEntry(entry: TreeEntry): boolean {
  return !LEFT_OUT.has(entry.path.split("/", 1)[0]!);
}

/** The OCI image config: what runs, as the guest's entry script (config.ts) runs it. */
function imageConfig(image: StoredImage, layer: LayerBlob, protoText: string | undefined): object {
  const config: FunctionConfig = image.config;
  return {
    created: image.createdAt,
    ...PLATFORM,
    config: {
      Entrypoint: config.argv,
      Env: environment(config.env),
      WorkingDir: config.workdir,
      ExposedPorts: { [`${config.port}/tcp`]: {} },
      Labels: functionLabels(config, protoText),
    },
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [{ created: image.createdAt, created_by: `vhive: ${image.source.kind} ${basename(image.source.path)}` }],
  };
}

/** The guest gives the function PATH and HOME unless the image sets them; so does the config. */
function environment(env: Record<string, string>): string[] {
  const all = { PATH: DEFAULT_PATH, HOME: "/root", ...env };
  return Object.entries(all).map(([key, value]) => `${key}=${value}`);
}

interface Blob {
  digest: string;
  size: number;
}

async function putJsonBlob(blobsDir: string, value: unknown): Promise<Blob> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = digestBytes(bytes);
  await writeFile(join(blobsDir, digestHex(digest)), bytes);
  return { digest, size: bytes.length };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value));
}

function blobRel(digest: string): string {
  return `blobs/sha256/${digestHex(digest)}`;
}

/**
 * Makes a temp directory beside `target` for the archive, checking on the way that the
 * destination is writable, before any slow work. Its owner removes it, with whatever was left in it.
 */
async function claimDestination(target: string): Promise<TempDir> {
  const existing = await stat(target).catch(() => undefined);
  if (existing?.isDirectory()) {
    throw new VhiveError("ERR_IMAGE_EXPORT", `The destination ${target} is a directory`, {
      remedy: `Give the archive's file name, e.g. ${join(target, "image.tar")}.`,
    });
  }
  return makeTempDir("export", dirname(target)).catch((error: unknown) => {
    throw destinationError(target, error);
  });
}

function destinationError(target: string, error: unknown): VhiveError {
  const code = (error as NodeJS.ErrnoException).code;
  const dir = dirname(target);
  const why =
    code === "ENOENT" ? `the directory ${dir} does not exist`
    : code === "ENOTDIR" ? `${dir} is not a directory`
    : code === "EACCES" || code === "EPERM" || code === "EROFS" ? `${dir} is not writable (${code})`
    : messageOf(error);
  return new VhiveError("ERR_IMAGE_EXPORT", `Cannot write the archive ${target}: ${why}`, { cause: error, remedy: DESTINATION_REMEDY });
}

/** The layout as a tar: fixed order, times and owners, so one image always gives the same archive. */
async function writeArchive(layoutDir: string, archive: string, mtime: Date, signal: AbortSignal | undefined): Promise<void> {
  const blobs = (await readdir(join(layoutDir, "blobs", "sha256"))).sort().map((name) => `blobs/sha256/${name}`);
  const members = ["oci-layout", "index.json", "manifest.json", "blobs", "blobs/sha256", ...blobs];
  if (signal?.aborted) throw new VhiveError("ERR_ABORTED", "Exporting the image was cancelled");
  try {
    await tar.c({ file: archive, cwd: layoutDir, portable: true, mtime, noDirRecurse: true }, members);
  } catch (error) {
    throw new VhiveError("ERR_IMAGE_EXPORT", `Writing the archive ${archive} failed: ${messageOf(error)}`, {
      cause: error,
      remedy: "Free disk space where the archive goes, then export again.",
    });
  }
}
