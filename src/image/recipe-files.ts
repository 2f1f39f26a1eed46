/**
 * What a recipe copies into its image: each `files` entry is a file, or a directory copied
 * whole (recursively, with modes and the symlinks inside it), so a Node.js app comes with its
 * node_modules without a tar step. Its content address covers every path, type, mode, file
 * content and link target under it, so changing any of them rebuilds the image.
 *
 * A symlink inside a copied directory is copied as a link; it must lead to a place inside that
 * directory, since in the image nothing else of the host is there: one that leads outside (or
 * is absolute) is refused. A `src` that is itself a symlink is followed.
 *
 * Throws ERR_RECIPE_INVALID.
 */
import { lstat, readdir, readlink, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { digestFile } from "../shared/digest.js";
import { VhiveError } from "../shared/errors.js";

/** Parts of the content address of `src` (relative to the recipe directory `dir`). */
export async function digestSource(dir: string, src: string, recipePath: string): Promise<(string | Buffer)[]> {
  const full = join(dir, src);
  const info = await stat(full).catch(() => undefined);
  if (info?.isFile()) return [src, await digestFile(full)];
  if (info?.isDirectory()) return [src, "dir", ...(await digestTree(await realpath(full), src, recipePath))];
  throw new VhiveError("ERR_RECIPE_INVALID", `${recipePath} names ${src}, but ${full} is ${info ? "neither a file nor a directory" : "not there"}`);
}

async function digestTree(root: string, src: string, recipePath: string): Promise<string[]> {
  const parts: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const info = await lstat(path);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isSymbolicLink()) {
        const target = await readlink(path);
        await checkLink(root, rel, target, src, recipePath);
        parts.push(rel, "link", target);
      } else if (info.isDirectory()) {
        parts.push(rel, "dir", mode);
        await walk(path);
      } else if (info.isFile()) {
        parts.push(rel, "file", mode, await digestFile(path));
      } else {
        throw new VhiveError("ERR_RECIPE_INVALID", `${recipePath}: ${src}/${rel} is not a file, directory or symlink (a socket, FIFO or device cannot be copied into an image)`, {
          remedy: `remove it from ${src}, or copy the files around it one by one`,
        });
      }
    }
  };
  await walk(root);
  return parts;
}

/**
 * A link at `rel` (inside `root`) pointing at `target` must stay inside `root` wherever the tree
 * is copied to: relative, never climbing above the tree on the way (`../app/x` from the top of a
 * directory named app works only while it is named app), and, if the target exists, really
 * ending up inside (links through links).
 */
async function checkLink(root: string, rel: string, target: string, src: string, recipePath: string): Promise<void> {
  const path = join(root, rel);
  if (!target.startsWith("/") && !climbsOut(rel, target)) {
    const real = await realpath(path).catch(() => undefined);
    if (real === undefined || real === root || real.startsWith(root + sep)) return;
  }
  throw new VhiveError("ERR_RECIPE_INVALID", `${recipePath}: ${src}/${rel} is a symlink to ${target}, which leads outside ${src}; in the image it would point at whatever the guest has there`, {
    remedy: "replace the link with the file or directory it points to, or copy its target in with a files entry of its own",
  });
}

/** Whether following `target` from the link at `rel` goes above the tree's top at any step. */
function climbsOut(rel: string, target: string): boolean {
  let depth = rel.split(sep).length - 1; // directories between the top and the link
  for (const part of target.split("/")) {
    if (part === "..") depth--;
    else if (part !== "." && part !== "") depth++;
    if (depth < 0) return true;
  }
  return false;
}
