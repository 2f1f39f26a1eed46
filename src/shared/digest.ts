/** SHA-256 digests of files and byte strings, as "sha256:<hex>". */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";

export async function digestFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return `sha256:${hash.digest("hex")}`;
}

export function digestBytes(data: string | Buffer | readonly (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of Array.isArray(data) ? data : [data]) hash.update(part);
  return `sha256:${hash.digest("hex")}`;
}

/** The hex part of a digest, for use in file names. */
export function digestHex(digest: string): string {
  return digest.replace(/^sha256:/, "");
}
