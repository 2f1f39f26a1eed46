/** Files shipped with vhive (functions/, protos/), found relative to this module in src/ or dist/. */
import { fileURLToPath } from "node:url";

/** The package root: this file is src/shared/package-root.ts or dist/shared/package-root.js. */
export function packagePath(...parts: string[]): string {
  return fileURLToPath(new URL(["..", "..", ...parts].join("/"), import.meta.url));
}
