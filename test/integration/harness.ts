/** Shared pieces of the integration tests: the host, the CLI, the leak check, snapshot copies. */
import { execFileSync, spawn } from "node:child_process";
import { copyFile, open, readdir, readFile, writeFile } from "node:fs/promises";
import { inject, expect } from "vitest";
import { openHost, type Host } from "../../src/start/index.js";
import { liveChildCount } from "../../src/shared/child.js";
import { NoOpLog } from "../../src/shared/log.js";
import { StatePaths } from "../../src/shared/paths.js";
import { packagePath } from "../../src/shared/package-root.js";
import { encodingPaths, loadWorkingSet, workingSetPaths } from "../../src/memory/index.js";
import { SnapshotStore, type StoredSnapshot } from "../../src/snapshot/index.js";

export const stateDir = (): string => inject("stateDir");

let host: Promise<Host> | undefined;
export function testHost(): Promise<Host> {
  host ??= openHost({ stateDir: stateDir(), accel: "auto", log: new NoOpLog() });
  return host;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** Called with stderr as it grows; lets a test act on a log line (e.g. send SIGINT). */
  onStderr?: (soFar: string, child: ReturnType<typeof spawn>) => void;
}

/** Run the built CLI (dist/cli/main.js) against the test state directory. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [packagePath("dist", "cli", "main.js"), "--state", stateDir(), ...args], {
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      options.onStderr?.(stderr, child);
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** QEMU processes whose command line mentions the test state directory. */
export async function qemuProcessesOfTests(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.startsWith("qemu-system") && cmdline.includes(stateDir())) pids.push(Number(entry));
  }
  return pids;
}

/** Nothing the tests started may outlive them: no child, no QEMU, no VM run directory. */
export async function expectNothingLeft(): Promise<void> {
  expect(liveChildCount()).toBe(0);
  expect(await qemuProcessesOfTests()).toEqual([]);
  const vms = await readdir(new StatePaths(stateDir()).vmsDir).catch(() => []);
  expect(vms).toEqual([]);
}

/** A copy of a snapshot, and of its working set if it has one, under a new id: to damage it. */
export async function cloneSnapshot(snapshot: StoredSnapshot): Promise<StoredSnapshot> {
  const store = new SnapshotStore(new StatePaths(stateDir()));
  const draft = await store.draft(snapshot.meta.function);
  execFileSync("cp", ["--sparse=always", snapshot.memPath, draft.memPath]);
  await copyFile(snapshot.sumsPath, draft.sumsPath);
  await copyFile(snapshot.statePath, draft.statePath);
  const clone = await store.commit(draft, { ...snapshot.meta, id: draft.id });
  const workingSet = await loadWorkingSet(snapshot);
  if (workingSet) {
    for (const encoding of workingSet.encodings) {
      const to = encodingPaths(clone, encoding.codec);
      await copyFile(encoding.pagesPath, to.pagesPath);
      await copyFile(encoding.indexPath, to.indexPath);
    }
    const to = workingSetPaths(clone);
    await copyFile(workingSet.tracePath, to.tracePath);
    await writeFile(to.metaPath, JSON.stringify({ ...workingSet.meta, snapshotId: clone.meta.id }));
  }
  return clone;
}

/** Damage a file as a stray write would: flip every byte of [offset, offset + length). */
export async function flipBytes(path: string, offset: number, length = 1): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const bytes = Buffer.alloc(length);
    await handle.read(bytes, 0, length, offset);
    for (let i = 0; i < length; i++) bytes[i] = bytes[i]! ^ 0xff;
    await handle.write(bytes, 0, length, offset);
  } finally {
    await handle.close();
  }
}
