/**
 * A private containerd for tests (Debian's package): its own config, root, state and sockets in
 * a temp dir, the CRI plugin disabled, started as a tracked child and stopped by the cleanups.
 * Needs root.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { ChildHandle } from "../../../src/shared/child.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import type { Cleanups } from "./cleanups.js";

export interface PrivateContainerd {
  /** containerd's gRPC socket, for `ctr --address`. */
  address: string;
  ttrpcAddress: string;
  /** containerd's root directory (content store, snapshotters). */
  root: string;
  /** Runs `ctr --address ADDRESS ...args` to its end; rejects with its stderr if it fails. */
  ctr(args: readonly string[]): Promise<string>;
}

/** Resolves with the first line of `stream` that matches, or rejects when the process exits first. */
export function lineMatching(stream: Readable, child: ChildHandle, pattern: RegExp, seen: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stream });
    const onExit = () => reject(new Error(`${child.name} exited before printing ${pattern}:\n${seen.join("\n")}`));
    void child.exited.then(onExit);
    lines.on("line", (line) => {
      seen.push(line);
      if (pattern.test(line)) {
        lines.close();
        resolve(line);
      }
    });
  });
}

export async function startContainerd(cleanups: Cleanups): Promise<PrivateContainerd> {
  if (process.getuid?.() !== 0) throw new Error("this test needs root to run containerd");
  if (!existsSync("/usr/bin/containerd")) throw new Error("containerd is missing: run scripts/setup.sh (it installs the containerd package)");
  const dir = await makeTempDir("containerd");
  cleanups.push(() => dir.remove());
  const address = join(dir.path, "containerd.sock");
  const ttrpcAddress = `${address}.ttrpc`;
  const root = join(dir.path, "root");
  await writeFile(
    join(dir.path, "config.toml"),
    [
      "version = 2",
      `root = "${root}"`,
      `state = "${dir.path}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = "${address}"`,
      "[ttrpc]",
      `  address = "${ttrpcAddress}"`,
    ].join("\n"),
  );
  const log: string[] = [];
  const containerd = new ChildHandle("containerd", "containerd", ["--config", join(dir.path, "config.toml")], { stdio: ["ignore", "ignore", "pipe"] });
  cleanups.push(() => containerd.stop());
  await lineMatching(containerd.process.stderr!, containerd, /containerd successfully booted/, log);
  return { address, ttrpcAddress, root, ctr: (args) => runCtr(address, args) };
}

async function runCtr(address: string, args: readonly string[]): Promise<string> {
  const child = new ChildHandle(`ctr ${args[0] ?? ""}`, "ctr", ["--address", address, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.process.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.process.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = await child.exited;
  if (exit.code !== 0) throw new Error(`ctr ${args.join(" ")} exited with ${exit.code ?? exit.signal}: ${stderr}`);
  return stdout;
}
