/**
 * Start-up of the daemon after a crash: one daemon per state directory (daemon.pid), and
 * whatever a killed daemon left behind is cleaned up before anything new starts:
 *
 *   - QEMU and vhive-pager processes whose command line names this state directory and whose
 *     parent is not a live vhive (node) process: they belonged to a daemon that died (their
 *     parent is then init or a subreaper). They are SIGKILLed and awaited.
 *   - the pager's temporary socket directories named on those pagers' command lines
 *   - vms/<id>/ run directories
 *   - snapshots/<fn>/<id>.partial drafts: a snapshot that was being made is not restorable
 *
 * Finished snapshots and working sets are kept: they are checked before each use.
 */
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { VhiveError } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { StatePaths } from "../shared/paths.js";
import { SnapshotStore } from "../snapshot/index.js";

export interface RecoveryReport {
  killed: { pid: number; program: string }[];
  runDirs: number;
  drafts: number;
}

interface ProcessInfo {
  pid: number;
  ppid: number;
  argv: string[];
}

async function readProcess(pid: number): Promise<ProcessInfo | undefined> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
  if (cmdline === undefined || status === undefined || cmdline === "") return undefined;
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return { pid, ppid, argv: cmdline.split("\0").filter((word) => word !== "") };
}

async function processes(): Promise<ProcessInfo[]> {
  const entries = await readdir("/proc");
  const found = await Promise.all(entries.filter((entry) => /^\d+$/.test(entry)).map((entry) => readProcess(Number(entry))));
  return found.filter((info): info is ProcessInfo => info !== undefined);
}

/** Node runs vhive: the daemon, a CLI command, a test. */
function isNodeProcess(info: ProcessInfo | undefined): boolean {
  return info !== undefined && basename(info.argv[0] ?? "").startsWith("node");
}

/** Running (a zombie waiting for its new parent to reap it counts as gone). */
async function isAlive(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
  return status !== undefined && !/^State:\s+Z/m.test(status);
}

/** Processes of vhive's kind (QEMU, the pager) that mention `root` and have no live vhive parent. */
export async function leftoverProcesses(root: string): Promise<ProcessInfo[]> {
  const all = await processes();
  const byPid = new Map(all.map((info) => [info.pid, info]));
  return all.filter((info) => {
    const program = basename(info.argv[0] ?? "");
    if (!program.startsWith("qemu-system") && program !== "vhive-pager") return false;
    if (!info.argv.some((word) => word.includes(`${root}/`))) return false;
    if (info.pid === process.pid) return false;
    const parent = byPid.get(info.ppid);
    // A child of a live node process belongs to a running vhive (a CLI command, a test).
    return !isNodeProcess(parent);
  });
}

/** Kill what a crashed daemon left behind and remove its scratch files. */
export async function recoverState(paths: StatePaths, log: Log): Promise<RecoveryReport> {
  const report: RecoveryReport = { killed: [], runDirs: 0, drafts: 0 };
  const leftovers = await leftoverProcesses(paths.root);
  for (const info of leftovers) {
    try {
      process.kill(info.pid, "SIGKILL");
      report.killed.push({ pid: info.pid, program: basename(info.argv[0] ?? "") });
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5000;
  const anyAlive = async () => (await Promise.all(leftovers.map((info) => isAlive(info.pid)))).some(Boolean);
  while ((await anyAlive()) && Date.now() < deadline) await sleep(20);
  for (const info of leftovers) {
    const socket = info.argv[info.argv.indexOf("--socket") + 1];
    if (info.argv.includes("--socket") && socket && basename(dirname(socket)).startsWith("vhive-pager-")) await rm(dirname(socket), { recursive: true, force: true });
  }
  for (const dir of await readdir(paths.vmsDir).catch(() => [] as string[])) {
    await rm(join(paths.vmsDir, dir), { recursive: true, force: true });
    report.runDirs++;
  }
  report.drafts = await new SnapshotStore(paths).removeDrafts();
  if (report.killed.length + report.runDirs + report.drafts > 0) log.warn("cleaned up after a previous daemon", { ...report });
  return report;
}

/**
 * Claim the state directory for this daemon (state/daemon.pid). Throws ERR_DAEMON_RUNNING if a
 * live daemon holds it; a pid file of a dead one is taken over. Returns the release function.
 */
export async function claimStateDir(paths: StatePaths): Promise<() => Promise<void>> {
  const pidPath = join(paths.root, "daemon.pid");
  const text = await readFile(pidPath, "utf8").catch(() => undefined);
  const pid = Number(text?.trim());
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && (await isAlive(pid))) {
    const other = await readProcess(pid);
    if (isNodeProcess(other)) {
      throw new VhiveError("ERR_DAEMON_RUNNING", `a vhive daemon (pid ${pid}) already serves ${paths.root}`, { remedy: `stop it (kill ${pid}) or use another --state` });
    }
  }
  await writeFile(pidPath, `${process.pid}\n`);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    const now = await readFile(pidPath, "utf8").catch(() => "");
    if (now.trim() === String(process.pid)) await rm(pidPath, { force: true });
  };
}
