/**
 * Temporary directories with an owner: `await using dir = await makeTempDir("x")`. One still
 * present when the process exits (process.exit, an uncaught error) is removed by an exit hook,
 * so a pager socket directory, say, never outlives the process that made it.
 */
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TempDir extends AsyncDisposable {
  readonly path: string;
  remove(): Promise<void>;
}

const live = new Set<string>();
let exitHookInstalled = false;

/** Remove every temporary directory not yet removed by its owner (synchronously: 'exit' handlers must be). */
export function removeLeftoverTempDirs(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

function removeAtExit(path: string): void {
  live.add(path);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", removeLeftoverTempDirs);
}

export async function makeTempDir(prefix: string, parent = tmpdir()): Promise<TempDir> {
  const path = await mkdtemp(join(parent, `vhive-${prefix}-`));
  removeAtExit(path);
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await rm(path, { recursive: true, force: true });
    live.delete(path);
  };
  return { path, remove, [Symbol.asyncDispose]: remove };
}
