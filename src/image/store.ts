/**
 * The image store: images/<id>/ holding rootfs.ext4, image.json and the function's .proto.
 * Ids are content addresses of the image's source (recipe and its files, or an OCI manifest),
 * so building the same thing twice finds the first result. image.json is written last: a
 * directory without it is an unfinished build and is not listed.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { VhiveError } from "../shared/errors.js";
import type { StatePaths } from "../shared/paths.js";
import type { FunctionConfig } from "./config.js";

/** Where an image came from; "container": a container's root filesystem, made by the containerd shim. */
export type ImageSourceKind = "recipe" | "oci" | "docker-archive" | "container";

export interface ImageRecord {
  /** 64 hex digits; any unique prefix of 12 or more names the image too. */
  id: string;
  name: string;
  source: { kind: ImageSourceKind; path: string; digest: string };
  createdAt: string;
  /** Size of rootfs.ext4 in bytes. */
  bytes: number;
  /** sha256 of rootfs.ext4, for snapshot fingerprints. */
  rootfsDigest: string;
  config: FunctionConfig;
}

export interface StoredImage extends ImageRecord {
  dir: string;
  rootfsPath: string;
  /** Absolute path of the image's .proto, if it has one. */
  protoPath: string | undefined;
}

export const SHORT_ID_LENGTH = 12;

export class ImageStore {
  readonly #paths: StatePaths;
  constructor(paths: StatePaths) {
    this.#paths = paths;
  }

  async list(): Promise<StoredImage[]> {
    const ids = await readdir(this.#paths.imagesDir).catch(() => [] as string[]);
    const images: StoredImage[] = [];
    for (const id of ids) {
      const image = await this.get(id);
      if (image) images.push(image);
    }
    return images.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async get(id: string): Promise<StoredImage | undefined> {
    const dir = this.#paths.imageDir(id);
    const text = await readFile(join(dir, "image.json"), "utf8").catch(() => undefined);
    if (text === undefined) return undefined;
    const record = JSON.parse(text) as ImageRecord;
    return {
      ...record,
      dir,
      rootfsPath: join(dir, "rootfs.ext4"),
      protoPath: record.config.proto ? join(dir, record.config.proto) : undefined,
    };
  }

  /**
   * Find an image by id, unique id prefix, name (the newest image of that name), or the path of
   * the recipe directory or archive it was made from.
   */
  async resolve(ref: string): Promise<StoredImage> {
    const images = await this.list();
    const exact = images.find((image) => image.id === ref);
    if (exact) return exact;
    if (/^[0-9a-f]{4,63}$/.test(ref)) {
      const matches = images.filter((image) => image.id.startsWith(ref));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) {
        throw new VhiveError("ERR_IMAGE_AMBIGUOUS", `image id prefix ${ref} matches ${matches.length} images`, {
          remedy: "give more digits of the id (vhive image ls shows them)",
        });
      }
    }
    const byName = images.find((image) => image.name === ref);
    if (byName) return byName;
    const path = resolve(ref);
    const byPath = images.find((image) => image.source.path === path);
    if (byPath) return byPath;
    throw new VhiveError("ERR_IMAGE_NOT_FOUND", `no image named ${ref}`, {
      remedy: "build one with `vhive image build <recipe-dir>` or `vhive image import <archive>`; `vhive image ls` lists them",
    });
  }

  /** Move a finished build directory into place and write its image.json. */
  async commit(buildDir: string, record: Omit<ImageRecord, "bytes" | "createdAt">): Promise<StoredImage> {
    const bytes = (await stat(join(buildDir, "rootfs.ext4"))).size;
    const full: ImageRecord = { ...record, bytes, createdAt: new Date().toISOString() };
    await writeFile(join(buildDir, "image.json"), JSON.stringify(full, null, 2) + "\n");
    const dir = this.#paths.imageDir(record.id);
    // A leftover unfinished directory of the same id holds nothing worth keeping.
    if (!(await this.get(record.id))) await rm(dir, { recursive: true, force: true });
    await mkdir(this.#paths.imagesDir, { recursive: true });
    await rename(buildDir, dir);
    return (await this.get(record.id))!;
  }

  async remove(id: string): Promise<void> {
    await rm(this.#paths.imageDir(id), { recursive: true, force: true });
  }
}
