/**
 * A container's root filesystem as a vhive image. containerd hands Create the rootfs mounts (an
 * overlay of the image's committed snapshot layers, usually); they are mounted at the bundle's
 * rootfs as runc's shim does, and packed into an ext4 image with the entrypoint the OCI spec
 * gives, in vhive's image store. The image is keyed by content: the committed layers an overlay
 * is made of (which containerd never changes), or a listing of every file otherwise, with the
 * function config; so the next container of the same image and command reuses it, and its
 * snapshots and working sets with it.
 *
 * What the function listens on comes from the container's annotations (spec.ts ANNOTATIONS),
 * else from /.vhive/function.json in the image (what `vhive image export` writes), else $PORT in
 * its environment (Knative sets it), with the protocol defaulting to http.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import lockfile from "proper-lockfile";
import { z } from "zod";
import { ImageStore, makeExt4, writeEntryScript, type FunctionConfig, type StoredImage } from "../../image/index.js";
import { digestBytes, digestFile, digestHex } from "../../shared/digest.js";
import { VhiveError } from "../../shared/errors.js";
import type { StatePaths } from "../../shared/paths.js";
import { runTool } from "../../shared/tool.js";
import type { Mount } from "../api.js";
import { ANNOTATIONS, type ContainerSpec } from "./spec.js";

const CONTAINER_IMAGE_FORMAT = "vhive-container-1";

/** What `vhive image export` leaves in the layer for runtimes that see only the root filesystem. */
export const FUNCTION_CONFIG_PATH = ".vhive/function.json";

const ExportedConfigSchema = z.object({
  /** The vhive image it was exported from: names the container's image and its snapshots. */
  name: z.string().optional(),
  port: z.number().int().positive().max(65535),
  protocol: z.enum(["grpc", "http"]),
  method: z.string().optional(),
  proto: z.string().optional(),
  httpPath: z.string().optional(),
  memMib: z.number().int().positive().optional(),
  inputs: z.array(z.string()).optional(),
});

/** Mount what containerd gave at the spec's root, as runc's shim does; returns how to undo it. */
export async function mountRootfs(rootPath: string, mounts: readonly Mount[], signal?: AbortSignal): Promise<() => Promise<void>> {
  if (mounts.length === 0) return async () => {};
  await mkdir(rootPath, { recursive: true });
  for (const mount of mounts) {
    const args = ["-t", mount.type, ...(mount.options.length > 0 ? ["-o", mount.options.join(",")] : []), mount.source, rootPath];
    await runTool("mount", args, { failCode: "ERR_IMAGE_INVALID", step: `mounting the container's root filesystem (${mount.type})`, signal });
  }
  return () => unmountRootfs(rootPath);
}

/** Unmount a rootfs mounted by mountRootfs; nothing to do if it is not mounted. */
export async function unmountRootfs(rootPath: string): Promise<void> {
  const mounted = await runTool("mountpoint", ["-q", rootPath], { failCode: "ERR_VALIDATION", step: "checking the rootfs mount", acceptCodes: [1, 32] }).catch(() => ({ code: 1 }));
  if (mounted.code !== 0) return;
  await runTool("umount", [rootPath], { failCode: "ERR_VALIDATION", step: `unmounting ${rootPath}` });
}

/**
 * Environment variables that differ from pod to pod of one image (CRI sets HOSTNAME to the pod's
 * name). They are left out of the function's environment: all pods of an image share its
 * snapshot, and a clone restored from it could not carry its own values anyway.
 */
const PER_POD_ENV = ["HOSTNAME"];

/** The function config: annotations, then the image's own vhive config, then $PORT. */
export async function functionConfigOf(spec: ContainerSpec): Promise<{ config: FunctionConfig; protoFile?: string; name?: string }> {
  const exportedText = await readFile(join(spec.rootPath, FUNCTION_CONFIG_PATH), "utf8").catch(() => undefined);
  let exported: z.infer<typeof ExportedConfigSchema> | undefined;
  if (exportedText !== undefined) {
    const parsed = ExportedConfigSchema.safeParse(JSON.parse(exportedText));
    if (!parsed.success) {
      throw new VhiveError("ERR_IMAGE_INVALID", `the image's /${FUNCTION_CONFIG_PATH} is invalid: ${parsed.error.issues.map((issue) => issue.path.join(".")).join(", ")}`, {
        remedy: "export the image again with `vhive image export`",
      });
    }
    exported = parsed.data;
  }
  const annotated = spec.annotations[ANNOTATIONS.port];
  const portText = annotated ?? (exported ? String(exported.port) : spec.env.PORT);
  const port = Number(portText);
  if (portText === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new VhiveError("ERR_VALIDATION", portText === undefined ? "the container does not say which TCP port its function listens on" : `the function's port ${JSON.stringify(portText)} is not a TCP port`, {
      remedy: `set the annotation ${ANNOTATIONS.port} (or PORT in the container's environment), or run an image that \`vhive image export\` wrote`,
    });
  }
  const protocol = spec.annotations[ANNOTATIONS.protocol] ?? exported?.protocol ?? "http";
  if (protocol !== "grpc" && protocol !== "http") {
    throw new VhiveError("ERR_VALIDATION", `annotation ${ANNOTATIONS.protocol}=${protocol} is not a protocol vhive speaks`, { remedy: "use grpc or http" });
  }
  const protoFile = exported?.proto ? join(spec.rootPath, ".vhive", exported.proto) : undefined;
  return {
    config: {
      argv: spec.argv,
      // In name order: kubelet lists the Service variables in a Go map's order, a new one for
      // each pod, and the image (and so its snapshots) is keyed by this config.
      env: Object.fromEntries(
        Object.entries(spec.env)
          .filter(([key]) => !PER_POD_ENV.includes(key))
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      ),
      workdir: spec.cwd,
      port,
      protocol,
      method: spec.annotations[ANNOTATIONS.method] ?? exported?.method,
      proto: exported?.proto,
      httpPath: exported?.httpPath,
      memMib: exported?.memMib,
      inputs: exported?.inputs,
      ...(spec.user ? { user: spec.user } : {}),
    },
    protoFile,
    name: exported?.name,
  };
}

/**
 * What the root filesystem's content is, cheaply: an overlay of containerd's committed snapshots
 * by their paths (committed snapshots never change), anything else by a listing of every entry's
 * name, type, mode, owner, size, mtime and link target.
 */
async function contentKey(rootPath: string, mounts: readonly Mount[], signal?: AbortSignal): Promise<string> {
  const overlay = mounts.length === 1 && mounts[0]!.type === "overlay" ? mounts[0]! : undefined;
  const lower = overlay?.options.find((option) => option.startsWith("lowerdir="));
  const upper = overlay?.options.find((option) => option.startsWith("upperdir="));
  if (lower && upper) {
    // The container's own upper layer is empty when it is created; anything in it is its own.
    const { stdout } = await runTool("find", [upper.slice("upperdir=".length), "-mindepth", "1", "-maxdepth", "1"], { failCode: "ERR_IMAGE_INVALID", step: "looking at the container's upper layer", signal });
    if (stdout.trim() === "") return digestBytes(["overlay", lower]);
  }
  const listing = await runTool("find", [rootPath, "-xdev", "-printf", "%P\\t%y\\t%m\\t%U\\t%G\\t%s\\t%T@\\t%l\\n"], { failCode: "ERR_IMAGE_INVALID", step: "listing the container's root filesystem", signal });
  return digestBytes(["tree", listing.stdout.split("\n").sort().join("\n")]);
}

export interface ContainerImageOptions {
  /** Shown in `vhive image ls` and naming the image's snapshots, unless the image names itself. */
  name: string;
  signal?: AbortSignal;
}

/**
 * The vhive image of a mounted container root filesystem: the one already made for the same
 * content and config, else a new one (an ext4 of the root with vhive's entry script added on an
 * overlay, so the container's files are not touched). Containers of one image starting at once
 * make it once.
 */
export async function containerImage(paths: StatePaths, spec: ContainerSpec, mounts: readonly Mount[], options: ContainerImageOptions): Promise<StoredImage> {
  const { config, protoFile, name } = await functionConfigOf(spec);
  const key = await contentKey(spec.rootPath, mounts, options.signal);
  const protoDigest = protoFile ? await digestFile(protoFile).catch(() => "") : "";
  const id = digestHex(digestBytes([CONTAINER_IMAGE_FORMAT, key, JSON.stringify(config), protoDigest]));
  const store = new ImageStore(paths);
  const found = await store.get(id);
  if (found) return found;

  await mkdir(paths.locksDir, { recursive: true });
  const lockPath = join(paths.locksDir, `image-${id.slice(0, 16)}`);
  await writeFile(lockPath, "", { flag: "a" });
  const release = await lockfile.lock(lockPath, { stale: 30_000, update: 10_000, retries: { retries: 120, minTimeout: 1000, maxTimeout: 5000 } });
  try {
    const made = await store.get(id);
    if (made) return made;
    // Named apart from the image it was exported from: `vhive snapshot restore NAME` and friends
    // resolve names, and a container's image (its own ext4 and snapshots) is another image.
    return await packImage(paths, store, spec, config, protoFile, { id, key, name: name ? `container-${name}` : options.name, signal: options.signal });
  } finally {
    await release();
  }
}

async function packImage(
  paths: StatePaths,
  store: ImageStore,
  spec: ContainerSpec,
  config: FunctionConfig,
  protoFile: string | undefined,
  image: { id: string; key: string; name: string; signal?: AbortSignal },
): Promise<StoredImage> {
  await mkdir(paths.tmpDir, { recursive: true });
  const buildDir = join(paths.tmpDir, `container-${randomUUID().slice(0, 8)}`);
  const upper = join(buildDir, "upper");
  const work = join(buildDir, "work");
  const merged = join(buildDir, "merged");
  for (const dir of [upper, work, merged]) await mkdir(dir, { recursive: true });
  try {
    // vhive's entry script goes on an overlay: the container's own root stays as containerd made it.
    await runTool("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${spec.rootPath},upperdir=${upper},workdir=${work}`, merged], {
      failCode: "ERR_IMAGE_BUILD",
      step: "mounting an overlay on the container's root filesystem",
      signal: image.signal,
    });
    try {
      await writeEntryScript(merged, config);
      await makeExt4(merged, join(buildDir, "rootfs.ext4"), image.signal);
    } finally {
      await runTool("umount", [merged], { failCode: "ERR_IMAGE_BUILD", step: "unmounting the overlay" });
    }
    if (protoFile && config.proto) await copyFile(protoFile, join(buildDir, config.proto));
    await rm(upper, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
    await rm(merged, { recursive: true, force: true });
    return await store.commit(buildDir, {
      id: image.id,
      name: image.name,
      source: { kind: "container", path: spec.rootPath, digest: image.key },
      rootfsDigest: await digestFile(join(buildDir, "rootfs.ext4")),
      config,
    });
  } finally {
    await rm(buildDir, { recursive: true, force: true });
  }
}

