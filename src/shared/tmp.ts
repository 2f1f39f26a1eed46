/** Temporary directories with an owner: `await using dir = await makeTempDir("x")`. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TempDir extends AsyncDisposable {
  readonly path: string;
  remove(): Promise<void>;
}

export async function makeTempDir(prefix: string, parent = tmpdir()): Promise<TempDir> {
  const path = await mkdtemp(join(parent, `vhive-${prefix}-`));
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await rm(path, { recursive: true, force: true });
  };
  return { path, remove, [Symbol.asyncDispose]: remove };
}
