import { spawn, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claimStateDir, leftoverProcesses, recoverState } from "../../../src/orchestrator/index.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { StatePaths } from "../../../src/shared/paths.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function stateDir(): Promise<StatePaths> {
  const root = await makeTempDir("recovery");
  cleanups.push(() => root.remove());
  return new StatePaths(root.path);
}

/** Running; a zombie (killed, not yet reaped by its new parent) counts as gone. */
const alive = (pid: number) => {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
};

describe("daemon start-up after a crash", () => {
  it("kills an orphaned QEMU that names the state directory, and removes run directories and unfinished snapshots", async () => {
    const paths = await stateDir();
    await mkdir(join(paths.vmsDir, "deadbeef"), { recursive: true });
    await mkdir(join(paths.root, "snapshots", "hello", "abc123.partial"), { recursive: true });
    await mkdir(join(paths.root, "snapshots", "hello", "def456"), { recursive: true });
    // An orphan: the shell that started it exits at once, so its parent is no longer a node process.
    const pid = Number(execFileSync("bash", ["-c", `(exec -a qemu-system-x86_64 ${process.execPath} -e 'setTimeout(() => {}, 300000)' ${paths.root}/snapshots/hello/def456/mem) >/dev/null 2>&1 & echo $!`]).toString().trim());
    cleanups.push(() => alive(pid) && process.kill(pid, "SIGKILL"));
    while (!(await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).startsWith("qemu-system")) await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await leftoverProcesses(paths.root)).map((info) => info.pid)).toEqual([pid]);
    const report = await recoverState(paths, new NoOpLog());
    expect(report).toEqual({ killed: [{ pid, program: "qemu-system-x86_64" }], runDirs: 1, drafts: 1 });
    expect(alive(pid)).toBe(false);
    expect(await readdir(paths.vmsDir)).toEqual([]);
    expect(await readdir(join(paths.root, "snapshots", "hello"))).toEqual(["def456"]);
  });

  it("leaves alone a QEMU whose parent is a live node process (another vhive command's)", async () => {
    const paths = await stateDir();
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 300000)", `${paths.root}/x`], { argv0: "qemu-system-x86_64", stdio: "ignore" });
    cleanups.push(() => child.kill("SIGKILL"));
    await new Promise((resolve) => child.once("spawn", resolve));
    expect(alive(child.pid!)).toBe(true);
    expect(await leftoverProcesses(paths.root)).toEqual([]);
    expect((await recoverState(paths, new NoOpLog())).killed).toEqual([]);
  });

  it("one daemon per state directory: a live daemon's pid file refuses a second, a dead one's is taken over", async () => {
    const paths = await stateDir();
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 300000)"], { stdio: "ignore" });
    cleanups.push(() => other.kill("SIGKILL"));
    await new Promise((resolve) => other.once("spawn", resolve));
    await writeFile(join(paths.root, "daemon.pid"), `${other.pid}\n`);
    await expect(claimStateDir(paths)).rejects.toMatchObject({ code: "ERR_DAEMON_RUNNING", message: expect.stringContaining(String(other.pid)) });
    other.kill("SIGKILL");
    await new Promise((resolve) => other.once("exit", resolve));
    const release = await claimStateDir(paths);
    await release();
    await expect(stat(join(paths.root, "daemon.pid"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
