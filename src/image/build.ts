/**
 * Building an image from a recipe: mmdebstrap installs the recipe's Debian packages from the
 * host's own apt sources into a directory, copies the recipe's files in and runs its build
 * commands in a chroot (mmdebstrap's customize hooks mount /proc and /dev for them), then
 * rootfs.ts packs the tree into ext4.
 */
import { copyFile, mkdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { randomUUID } from "node:crypto";
import shellQuote from "shell-quote";
import { digestBytes, digestFile, digestHex } from "../shared/digest.js";
import { VhiveError, isVhiveError } from "../shared/errors.js";
import type { StatePaths } from "../shared/paths.js";
import { runTool } from "../shared/tool.js";
import type { FunctionConfig } from "./config.js";
import { packagesNotFound } from "./apt-errors.js";
import { loadRecipe, RECIPE_FILE, type LoadedRecipe } from "./recipe.js";
import { makeExt4, writeEntryScript } from "./rootfs.js";
import { ImageStore, type StoredImage } from "./store.js";

/** Bump when the way images are built changes, so cached images are rebuilt. */
const BUILD_FORMAT = "vhive-recipe-1";

export interface BuildOptions {
  /** apt sources file for mmdebstrap; default: the host's Debian sources. */
  aptSources?: string;
  /** Rebuild even if an image with the same content address exists. */
  force?: boolean;
  signal?: AbortSignal;
  /** Progress: a short phrase for each step and each line mmdebstrap prints. */
  onProgress?: (line: string) => void;
}

const HOST_SOURCES = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"];

async function hostAptSources(): Promise<string> {
  for (const path of HOST_SOURCES) {
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && info.size > 0) return path;
  }
  throw new VhiveError("ERR_IMAGE_BUILD", `no apt sources found (looked at ${HOST_SOURCES.join(", ")})`, {
    remedy: "pass --apt-sources FILE with a deb822 or one-line sources list for Debian",
  });
}

async function hostSuite(): Promise<string> {
  const osRelease = await readFile("/etc/os-release", "utf8").catch(() => "");
  return /^VERSION_CODENAME=(\w+)/m.exec(osRelease)?.[1] ?? "bookworm";
}

export async function buildImage(paths: StatePaths, recipeDir: string, options: BuildOptions = {}): Promise<StoredImage> {
  const loaded = await loadRecipe(recipeDir);
  const store = new ImageStore(paths);
  const sources = options.aptSources ?? (await hostAptSources());
  const id = digestHex(
    digestBytes([BUILD_FORMAT, loaded.digest, await digestFile(sources)]),
  );
  const existing = await store.get(id);
  if (existing && !options.force) return existing;

  await mkdir(paths.tmpDir, { recursive: true });
  const buildDir = join(paths.tmpDir, `build-${randomUUID().slice(0, 8)}`);
  await mkdir(buildDir);
  try {
    const rootDir = join(buildDir, "root");
    await debootstrap(loaded, rootDir, sources, options);
    const config = functionConfig(loaded);
    await writeEntryScript(rootDir, config);
    options.onProgress?.("packing the root filesystem (ext4)");
    await makeExt4(rootDir, join(buildDir, "rootfs.ext4"), options.signal);
    await rm(rootDir, { recursive: true, force: true });
    if (loaded.recipe.proto) await copyFile(join(loaded.dir, loaded.recipe.proto), join(buildDir, config.proto!));
    return await store.commit(buildDir, {
      id,
      name: loaded.recipe.name,
      source: { kind: "recipe", path: loaded.dir, digest: loaded.digest },
      rootfsDigest: await digestFile(join(buildDir, "rootfs.ext4")),
      config,
    });
  } finally {
    await rm(buildDir, { recursive: true, force: true });
  }
}

function functionConfig({ recipe }: LoadedRecipe): FunctionConfig {
  return {
    argv: recipe.entrypoint,
    env: recipe.env,
    workdir: recipe.workdir,
    port: recipe.port,
    protocol: recipe.protocol,
    method: recipe.method,
    proto: recipe.proto ? recipe.proto.split("/").at(-1) : undefined,
    httpPath: recipe.httpPath,
    memMib: recipe.memMib,
    inputs: recipe.inputs,
  };
}

/**
 * mmdebstrap customize hooks (shell, the image's root in "$1") that copy the recipe's files in.
 * `cp -a` keeps modes and copies a directory whole with the symlinks inside it; -H follows a
 * `src` that is itself a link; -T makes `dest` the copy itself, so a directory's contents land
 * in `dest` (merged if it exists) rather than in a subdirectory of it.
 */
export function copyHooks({ recipe, dir }: LoadedRecipe): string[] {
  return recipe.files.map((file) => {
    const dest = `"$1"${shellQuote.quote([file.dest])}`;
    return `mkdir -p "$1"${shellQuote.quote([dirname(file.dest)])} && cp -a -H -T ${shellQuote.quote([join(dir, file.src)])} ${dest}`;
  });
}

async function debootstrap(loaded: LoadedRecipe, rootDir: string, sources: string, options: BuildOptions): Promise<void> {
  const { recipe } = loaded;
  const suite = recipe.suite ?? (await hostSuite());
  const hooks = copyHooks(loaded);
  for (const command of recipe.build) {
    hooks.push(`chroot "$1" /bin/sh -c ${shellQuote.quote([command])}`);
  }
  const args = [
    "--variant=essential",
    "--mode=root",
    "--format=directory",
    // Documentation and translations are dead weight in a function image.
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    ...(recipe.packages.length > 0 ? [`--include=${recipe.packages.join(",")}`] : []),
    ...hooks.map((hook) => `--customize-hook=${hook}`),
    suite,
    rootDir,
    sources,
  ];
  options.onProgress?.(`installing ${recipe.packages.length} packages with mmdebstrap`);
  const errors: string[] = [];
  try {
    await runTool("mmdebstrap", args, {
      failCode: "ERR_IMAGE_BUILD",
      step: `building ${recipe.name} with mmdebstrap`,
      signal: options.signal,
      onLine: (line) => {
        if (line.startsWith("E: ")) errors.push(line);
        if (line.startsWith("I: ") || line.startsWith("E: ")) options.onProgress?.(line.slice(3));
      },
    });
  } catch (error) {
    throw missingPackageError(loaded, suite, errors, error) ?? error;
  }
}

/** When apt could not find a package the recipe names: that, first, and what to do. */
function missingPackageError(loaded: LoadedRecipe, suite: string, errors: readonly string[], error: unknown): VhiveError | undefined {
  if (!isVhiveError(error, "ERR_IMAGE_BUILD")) return undefined;
  const missing = packagesNotFound(errors);
  if (missing.length === 0) return undefined;
  const names = missing.join(", ");
  const first = missing[0]!;
  return new VhiveError(
    "ERR_IMAGE_BUILD",
    `building ${loaded.recipe.name}: apt found no package ${names} in the Debian ${suite} sources (named in ${join(loaded.dir, RECIPE_FILE)}, "packages")`,
    {
      remedy:
        `check the name with \`apt-cache policy ${first}\`, or look for the right one with \`apt-cache search --names-only <part of the name>\` ` +
        `(on a host with the same sources); fix "packages" and build again`,
      details: error.details, // mmdebstrap's last lines, apt's among them
      cause: error,
    },
  );
}
