/**
 * Opening an image archive: an OCI image layout or a docker-archive, as a directory or a tar.
 * The result lists the layer blobs in order plus the runtime config; layers.ts applies the layers.
 *
 * OCI image layout (image-spec image-layout.md):
 *   DIR/oci-layout             {"imageLayoutVersion": "1.0.0"}
 *   DIR/index.json             image index: manifests[] descriptors, ref.name annotation = tag
 *   DIR/blobs/sha256/<hex>     manifests, nested indexes, configs and layers, by content digest
 *
 * docker-archive (`docker save` before v25; v25 and later also write an OCI layout, preferred here):
 *   manifest.json              [{"Config": "<hex>.json", "RepoTags": ["app:1"], "Layers": ["<id>/layer.tar"]}]
 *
 * JSON blobs are checked against their digests when read; layer blobs are checked while applied.
 * A tar is unpacked into a temp dir, which the OpenedImage owns until close().
 *
 * Throws ERR_IMAGE_INVALID (malformed or incomplete archive), ERR_IMAGE_NOT_FOUND (`ref` names no
 * image), ERR_IMAGE_AMBIGUOUS (several images and no `ref`), ERR_ABORTED.
 */
import { readFile, stat } from "node:fs/promises";
import { join, posix, resolve } from "node:path";
import * as tar from "tar";
import { z } from "zod";
import { digestBytes, digestFile, digestHex } from "../shared/digest.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import { makeTempDir, type TempDir } from "../shared/tmp.js";
import { feedTar } from "./layers.js";

export interface ImageRuntimeConfig {
  /** OCI config.Entrypoint, or []. */
  entrypoint: string[];
  /** OCI config.Cmd, or []. */
  cmd: string[];
  /** From config.Env's "K=V" list; the value is everything after the first "=". */
  env: Record<string, string>;
  /** config.WorkingDir, or "/". */
  workdir: string;
  /** TCP ports from config.ExposedPorts keys like "8080/tcp", sorted. */
  exposedPorts: number[];
  /** config.Labels, or {}. */
  labels: Record<string, string>;
}

export interface LayerRef {
  /** Absolute path of the layer blob. */
  path: string;
  /** "sha256:..." as named by the manifest, or computed for a docker-archive. */
  digest: string;
  /** As declared, or "" for a docker-archive. */
  mediaType: string;
}

export interface OpenedImage extends AsyncDisposable {
  kind: "oci" | "docker-archive";
  /**
   * Content address of the image: the manifest's digest ("sha256:<hex>" of the manifest bytes).
   * A docker-archive has no manifest blob, so there it is the config's digest (docker's image id).
   */
  digest: string;
  /**
   * io.containerd.image.name annotation (full name, docker save v25+ writes it), else
   * org.opencontainers.image.ref.name, else docker RepoTags[0], if any.
   */
  name: string | undefined;
  config: ImageRuntimeConfig;
  /** In application order, lowest first. */
  layers: LayerRef[];
  /** Removes any temp dir made to unpack a tar; idempotent. */
  close(): Promise<void>;
}

const OCI_REMEDY =
  "Re-export the image as an OCI layout, e.g. `skopeo copy docker://IMAGE oci:DIR:latest` or with `umoci`.";
const DOCKER_REMEDY = "Re-create the archive with `docker save -o img.tar IMAGE`.";
const ANY_REMEDY =
  "Pass an OCI layout directory (`skopeo copy docker://IMAGE oci:DIR:latest`) or a tar from `docker save -o img.tar IMAGE`.";
const REF_NAME = "org.opencontainers.image.ref.name";
/** Full name docker save (v25+) and containerd put next to the bare tag in ref.name. */
const CONTAINERD_NAME = "io.containerd.image.name";
const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);
const MANIFEST_TYPES = new Set([
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
]);
/** Index -> index -> manifest is the deepest real layouts go; more is a loop. */
const MAX_INDEX_DEPTH = 4;

const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, "must be sha256: and 64 lowercase hex digits");
const Descriptor = z.object({
  mediaType: z.string(),
  digest: Digest,
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: z.object({ architecture: z.string(), os: z.string() }).optional(),
});
type Descriptor = z.infer<typeof Descriptor>;
const OciLayout = z.object({ imageLayoutVersion: z.string() });
const ImageIndex = z.object({ schemaVersion: z.literal(2), manifests: z.array(Descriptor) });
const ImageManifest = z.object({ schemaVersion: z.literal(2), config: Descriptor, layers: z.array(Descriptor) });
// Docker writes null for unset lists.
const StringList = z.array(z.string()).nullish();
const ImageConfig = z.object({
  config: z
    .object({
      Entrypoint: StringList,
      Cmd: StringList,
      Env: StringList,
      WorkingDir: z.string().nullish(),
      ExposedPorts: z.record(z.string(), z.unknown()).nullish(),
      Labels: z.record(z.string(), z.string()).nullish(),
    })
    .nullish(),
});
const DockerManifest = z
  .array(z.object({ Config: z.string(), RepoTags: z.array(z.string()).nullish(), Layers: z.array(z.string()) }))
  .min(1);

/** Where the archive's files are, and how to name them to the user. */
interface Source {
  root: string;
  describe(rel: string): string;
  remedy: string;
}

/**
 * Opens `path`: a directory or a tar holding an OCI layout or a docker-archive.
 * `ref` picks an image by ref.name (or docker RepoTag) when there are several.
 */
export async function openImageArchive(
  path: string,
  options: { ref?: string; signal?: AbortSignal } = {},
): Promise<OpenedImage> {
  const { ref, signal } = options;
  throwIfAborted(signal);
  const stats = await stat(path).catch(() => undefined);
  if (stats?.isDirectory()) {
    const root = resolve(path);
    return openedImage(await readUnpacked(root, (rel) => join(root, rel), ref, signal));
  }
  if (stats?.isFile()) return openTarball(resolve(path), ref, signal);
  throw invalid(`Image archive ${path} ${stats === undefined ? "does not exist" : "is neither a directory nor a file"}`, ANY_REMEDY);
}

type ImageFields = Omit<OpenedImage, "close" | typeof Symbol.asyncDispose>;

function openedImage(fields: ImageFields, tmp?: TempDir): OpenedImage {
  const close = async (): Promise<void> => {
    await tmp?.remove();
  };
  return { ...fields, close, [Symbol.asyncDispose]: close };
}

async function openTarball(tarPath: string, ref: string | undefined, signal: AbortSignal | undefined): Promise<OpenedImage> {
  const tmp = await makeTempDir("image");
  try {
    try {
      // Strict: in an archive of blobs, any oddity (absolute path, bad header) means a damaged file.
      await feedTar(tarPath, new tar.Unpack({ cwd: tmp.path, strict: true, preserveOwner: false }), { signal });
    } catch (error) {
      if (error instanceof VhiveError) throw error;
      throw invalid(`${tarPath} is not a readable tar archive: ${messageOf(error)}`, DOCKER_REMEDY, error);
    }
    const describe = (rel: string): string => (rel === "." ? tarPath : `${rel} in ${tarPath}`);
    return openedImage(await readUnpacked(tmp.path, describe, ref, signal), tmp);
  } catch (error) {
    await tmp.remove();
    throw error;
  }
}

/** Tells the formats apart by their top-level JSON file. */
async function readUnpacked(
  root: string,
  describe: (rel: string) => string,
  ref: string | undefined,
  signal: AbortSignal | undefined,
): Promise<ImageFields> {
  // docker save v25+ writes both; the OCI side has digests to check, so it wins.
  if (await isFile(join(root, "index.json"))) return readLayout({ root, describe, remedy: OCI_REMEDY }, ref);
  if (await isFile(join(root, "manifest.json"))) return readDockerArchive({ root, describe, remedy: DOCKER_REMEDY }, ref, signal);
  throw invalid(
    `${describe(".")} is neither an OCI image layout nor a docker-archive: it has no index.json and no manifest.json`,
    ANY_REMEDY,
  );
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

async function readLayout(src: Source, ref: string | undefined): Promise<ImageFields> {
  if (!(await isFile(join(src.root, "oci-layout")))) {
    throw invalid(`${src.describe(".")} is not an OCI image layout: oci-layout is missing`, src.remedy);
  }
  await readJson(src, "oci-layout", OciLayout);
  const index = await readJson(src, "index.json", ImageIndex);
  const chosen = pickImage(index.manifests, src.describe("index.json"), ref);
  let descriptor = chosen;
  let parent = "index.json";
  for (let depth = 0; INDEX_TYPES.has(descriptor.mediaType); depth++) {
    if (depth === MAX_INDEX_DEPTH) throw invalid(`${src.describe(parent)}: image indexes nest too deep`, src.remedy);
    const nested = await readBlobJson(src, descriptor, ImageIndex, "image index", parent);
    parent = blobRel(descriptor.digest);
    descriptor = pickPlatform(nested.manifests, src.describe(parent));
  }
  if (!MANIFEST_TYPES.has(descriptor.mediaType)) {
    throw invalid(`${src.describe(parent)}: image ${descriptor.digest} has unsupported media type "${descriptor.mediaType}"`, src.remedy);
  }
  const manifest = await readBlobJson(src, descriptor, ImageManifest, "image manifest", parent);
  const manifestRel = blobRel(descriptor.digest);
  const config = await readBlobJson(src, manifest.config, ImageConfig, "image config", manifestRel);
  const layers: LayerRef[] = [];
  for (const [index, layer] of manifest.layers.entries()) {
    const path = join(src.root, blobRel(layer.digest));
    const size = await stat(path).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
    const what = `${src.describe(blobRel(layer.digest))} (layer ${index}, named by ${src.describe(manifestRel)})`;
    if (size === undefined) throw invalid(`Blob ${what} is missing`, src.remedy);
    if (size !== layer.size) throw invalid(`Blob ${what} is ${size} bytes, not ${layer.size}`, src.remedy);
    layers.push({ path, digest: layer.digest, mediaType: layer.mediaType });
  }
  const annotations = chosen.annotations ?? {};
  return {
    kind: "oci",
    digest: descriptor.digest,
    name: annotations[CONTAINERD_NAME] ?? annotations[REF_NAME],
    config: runtimeConfig(config, src.describe(blobRel(manifest.config.digest)), src.remedy),
    layers,
  };
}

/** Top level of index.json: by `ref`, else the only image, else the only linux/amd64 one. */
function pickImage(manifests: Descriptor[], label: string, ref: string | undefined): Descriptor {
  const refsOf = (d: Descriptor): string[] =>
    [d.annotations?.[REF_NAME], d.annotations?.[CONTAINERD_NAME]].filter((r) => r !== undefined);
  const known = manifests.flatMap(refsOf).join(", ") || "none";
  const candidates = ref === undefined ? manifests : manifests.filter((d) => refsOf(d).includes(ref));
  if (ref !== undefined && candidates.length === 0) {
    throw new VhiveError("ERR_IMAGE_NOT_FOUND", `${label} has no image named "${ref}" (names: ${known})`, {
      remedy: "Pass one of the names listed.",
    });
  }
  const [only, ...others] = candidates;
  if (only === undefined) throw invalid(`${label} lists no images (field manifests is empty)`, OCI_REMEDY);
  if (others.length === 0) return only;
  const forPlatform = candidates.filter(isLinuxAmd64);
  if (forPlatform.length === 1 && forPlatform[0] !== undefined) return forPlatform[0];
  throw new VhiveError("ERR_IMAGE_AMBIGUOUS", `${label} lists ${candidates.length} images (names: ${known})`, {
    remedy: "Pass the ref name of the image to use.",
  });
}

/** In a nested index (one image, several platforms), the guest runs linux/amd64. */
function pickPlatform(manifests: Descriptor[], label: string): Descriptor {
  const choice = manifests.length === 1 ? manifests[0] : manifests.find(isLinuxAmd64);
  if (choice !== undefined) return choice;
  const platforms = manifests.map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : "unknown"));
  throw invalid(`${label} has no linux/amd64 image (platforms: ${platforms.join(", ") || "none"})`, OCI_REMEDY);
}

function isLinuxAmd64(d: Descriptor): boolean {
  return d.platform?.os === "linux" && d.platform.architecture === "amd64";
}

function blobRel(digest: string): string {
  return posix.join("blobs", "sha256", digestHex(digest));
}

async function readDockerArchive(src: Source, ref: string | undefined, signal?: AbortSignal): Promise<ImageFields> {
  const label = src.describe("manifest.json");
  const entries = await readJson(src, "manifest.json", DockerManifest);
  const known = entries.flatMap((e) => e.RepoTags ?? []).join(", ") || "none";
  const candidates = ref === undefined ? entries : entries.filter((e) => e.RepoTags?.includes(ref));
  const [entry, ...others] = candidates;
  if (entry === undefined) {
    throw new VhiveError("ERR_IMAGE_NOT_FOUND", `${label} has no image tagged "${ref}" (tags: ${known})`, {
      remedy: "Pass one of the tags listed.",
    });
  }
  if (others.length > 0) {
    throw new VhiveError("ERR_IMAGE_AMBIGUOUS", `${label} holds ${candidates.length} images (tags: ${known})`, {
      remedy: "Pass the tag of the image to use.",
    });
  }
  const configRel = memberPath(src, entry.Config, "Config");
  const configBytes = await readMember(src, configRel, `image config (named by ${label})`);
  const config = parseJson(configBytes, src.describe(configRel), ImageConfig, src.remedy);
  const layers: LayerRef[] = [];
  for (const [index, layer] of entry.Layers.entries()) {
    throwIfAborted(signal);
    const rel = memberPath(src, layer, `Layers[${index}]`);
    const path = join(src.root, rel);
    if (!(await isFile(path))) {
      throw invalid(`${src.describe(rel)} (layer ${index}, named by ${label}) is missing`, src.remedy);
    }
    // docker save names layers by id, not by content, so the digest has to be computed.
    layers.push({ path, digest: await digestFile(path), mediaType: "" });
  }
  return {
    kind: "docker-archive",
    digest: digestBytes(configBytes),
    name: entry.RepoTags?.[0],
    config: runtimeConfig(config, src.describe(configRel), src.remedy),
    layers,
  };
}

/** A path from manifest.json, kept inside the unpacked archive: "/etc/shadow" must not become a layer. */
function memberPath(src: Source, raw: string, field: string): string {
  const rel = posix.normalize(raw);
  if (posix.isAbsolute(rel) || rel === ".." || rel.startsWith("../")) {
    throw invalid(`${src.describe("manifest.json")}: field ${field} "${raw}" points outside the archive`, src.remedy);
  }
  return rel;
}

async function readBlobJson<S extends z.ZodType>(
  src: Source,
  descriptor: Descriptor,
  schema: S,
  role: string,
  parentRel: string,
): Promise<z.output<S>> {
  const rel = blobRel(descriptor.digest);
  const bytes = await readMember(src, rel, `${role}, named by ${src.describe(parentRel)}`);
  const actual = digestBytes(bytes);
  if (actual !== descriptor.digest) {
    throw invalid(`Blob ${src.describe(rel)} (${role}) has digest ${actual}, not ${descriptor.digest}`, src.remedy);
  }
  return parseJson(bytes, src.describe(rel), schema, src.remedy);
}

async function readJson<S extends z.ZodType>(src: Source, rel: string, schema: S): Promise<z.output<S>> {
  return parseJson(await readMember(src, rel, "required file"), src.describe(rel), schema, src.remedy);
}

async function readMember(src: Source, rel: string, role: string): Promise<Buffer> {
  try {
    return await readFile(join(src.root, rel));
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === "ENOENT" ? "is missing" : `cannot be read: ${messageOf(error)}`;
    throw invalid(`${src.describe(rel)} (${role}) ${why}`, src.remedy, error);
  }
}

function parseJson<S extends z.ZodType>(bytes: Buffer, label: string, schema: S, remedy: string): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw invalid(`${label} is not valid JSON: ${messageOf(error)}`, remedy, error);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 3).map((issue) => `field ${fieldName(issue.path)}: ${issue.message}`);
  throw invalid(`${label} is malformed: ${problems.join("; ")}`, remedy);
}

/** zod's issue path as it reads in JSON: manifests[0].digest. */
function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(the whole document)";
  return path.map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`)).join("");
}

function runtimeConfig(parsed: z.infer<typeof ImageConfig>, label: string, remedy: string): ImageRuntimeConfig {
  const config = parsed.config ?? {};
  const env: Record<string, string> = {};
  for (const [index, pair] of (config.Env ?? []).entries()) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw invalid(`${label}: field config.Env[${index}] "${pair}" is not KEY=VALUE`, remedy);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const ports = new Set<number>();
  for (const key of Object.keys(config.ExposedPorts ?? {})) {
    const match = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(key);
    const port = Number(match?.[1]);
    if (match === null || !(port >= 1 && port <= 65535)) {
      throw invalid(`${label}: field config.ExposedPorts key "${key}" is not PORT/PROTOCOL`, remedy);
    }
    if ((match[2] ?? "tcp").toLowerCase() === "tcp") ports.add(port);
  }
  return {
    entrypoint: config.Entrypoint ?? [],
    cmd: config.Cmd ?? [],
    env,
    workdir: config.WorkingDir || "/",
    exposedPorts: [...ports].sort((a, b) => a - b),
    labels: config.Labels ?? {},
  };
}

function invalid(message: string, remedy: string, cause?: unknown): VhiveError {
  return new VhiveError("ERR_IMAGE_INVALID", message, { remedy, cause });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new VhiveError("ERR_ABORTED", "Opening the image archive was cancelled");
}
