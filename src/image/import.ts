/**
 * Importing an image built elsewhere: an OCI image layout directory (umoci, skopeo, buildah)
 * or a docker-archive tar (`docker save`). Layers are applied in order with whiteouts into a
 * directory, which rootfs.ts packs into ext4. What to run and where it listens come from the
 * image config, overridable from the command line; an image `vhive image export` wrote also
 * carries its protocol, gRPC method, inputs and .proto in dev.vhive.* labels (labels.ts).
 */
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { digestBytes, digestFile, digestHex } from "../shared/digest.js";
import { VhiveError } from "../shared/errors.js";
import type { StatePaths } from "../shared/paths.js";
import type { FunctionConfig, Protocol } from "./config.js";
import { readFunctionLabels } from "./labels.js";
import { applyLayers, type ApplyProgress } from "./layers.js";
import { openImageArchive, type OpenedImage } from "./oci.js";
import { makeExt4, writeEntryScript } from "./rootfs.js";
import { ImageStore, type StoredImage } from "./store.js";

const IMPORT_FORMAT = "vhive-import-1";

export interface ImportOptions {
  /** Which manifest of an OCI index, by its ref.name annotation. */
  ref?: string;
  /** Name to list the image under; default the archive's ref name or file name. */
  name?: string;
  /** Override the image's Entrypoint+Cmd. */
  argv?: string[];
  /** Port the function listens on; default the image's dev.vhive.port label, else its single exposed TCP port. */
  port?: number;
  /** Default the image's dev.vhive.protocol label, else "http". */
  protocol?: Protocol;
  method?: string;
  /** A .proto file for gRPC clients. */
  protoPath?: string;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (line: string) => void;
}

export async function importImage(paths: StatePaths, archivePath: string, options: ImportOptions = {}): Promise<StoredImage> {
  const source = resolve(archivePath);
  await using opened = await openImageArchive(source, { ref: options.ref, signal: options.signal });
  const { config, protoText } = functionConfig(opened, source, options);
  const protoDigest = options.protoPath ? await digestFile(options.protoPath) : "";
  const id = digestHex(digestBytes([IMPORT_FORMAT, opened.digest, JSON.stringify(config), protoDigest]));
  const store = new ImageStore(paths);
  const existing = await store.get(id);
  if (existing && !options.force) return existing;

  await mkdir(paths.tmpDir, { recursive: true });
  const buildDir = join(paths.tmpDir, `import-${randomUUID().slice(0, 8)}`);
  const rootDir = join(buildDir, "root");
  await mkdir(rootDir, { recursive: true });
  try {
    await applyLayers(opened.layers, rootDir, {
      signal: options.signal,
      onProgress: (p: ApplyProgress) => options.onProgress?.(`applying layer ${p.layerIndex + 1}/${p.layerCount} ${p.digest.slice(0, 19)}`),
    });
    await writeEntryScript(rootDir, config);
    options.onProgress?.("packing the root filesystem (ext4)");
    await makeExt4(rootDir, join(buildDir, "rootfs.ext4"), options.signal);
    await rm(rootDir, { recursive: true, force: true });
    if (options.protoPath) await copyFile(options.protoPath, join(buildDir, config.proto!));
    else if (protoText !== undefined) await writeFile(join(buildDir, config.proto!), protoText);
    return await store.commit(buildDir, {
      id,
      name: options.name ?? opened.name ?? basename(source).replace(/\.tar$/, ""),
      source: { kind: opened.kind, path: source, digest: opened.digest },
      rootfsDigest: await digestFile(join(buildDir, "rootfs.ext4")),
      config,
    });
  } finally {
    await rm(buildDir, { recursive: true, force: true });
  }
}

/** The function's config: options first, then the image's vhive labels, then its OCI config. */
function functionConfig(opened: OpenedImage, source: string, options: ImportOptions): { config: FunctionConfig; protoText?: string } {
  const image = opened.config;
  const labelled = readFunctionLabels(image.labels, `the image config of ${source}`);
  const argv = options.argv ?? [...image.entrypoint, ...image.cmd];
  if (argv.length === 0) {
    throw new VhiveError("ERR_IMAGE_INVALID", `the image config of ${source} has neither Entrypoint nor Cmd`, {
      remedy: "pass --entrypoint to say what to run",
    });
  }
  let port = options.port ?? labelled?.port;
  if (port === undefined) {
    if (image.exposedPorts.length !== 1) {
      const exposed = image.exposedPorts.length === 0 ? "no TCP port" : `TCP ports ${image.exposedPorts.join(", ")}`;
      throw new VhiveError("ERR_VALIDATION", `the image ${source} exposes ${exposed}; vhive needs to know which one the function listens on`, {
        remedy: "pass --port PORT",
      });
    }
    port = image.exposedPorts[0]!;
  }
  const proto = options.protoPath ? { name: basename(options.protoPath), text: undefined } : labelled?.proto;
  return {
    config: {
      argv,
      env: image.env,
      workdir: image.workdir || "/",
      port,
      protocol: options.protocol ?? labelled?.protocol ?? "http",
      method: options.method ?? labelled?.method,
      proto: proto?.name,
      httpPath: labelled?.httpPath,
      memMib: labelled?.memMib,
      inputs: labelled?.inputs,
    },
    protoText: proto?.text,
  };
}
