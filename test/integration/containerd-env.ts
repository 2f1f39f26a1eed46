/**
 * A private containerd with its CRI plugin and real CNI networking, for integration tests. It is
 * scripts/lib/private-containerd.sh run as one tracked child (`... run`), so scripts and tests
 * share one implementation of the start, the configuration templates and, above all, the
 * cleanup: everything lives under one temporary directory and one bridge of its own, and stop()
 * removes all of it. The script also stops by itself when its stdin closes, so even a test
 * process killed outright leaves nothing for long (the next start sweeps what a killed script
 * left).
 *
 *   await using env = await startPrivateContainerd();
 *   await env.importImages(["pause", "busybox"]);    // scripts/lib/cri-images.sh, cached
 *   ... CRI over env.socket (src/containerd/cri), pods on env.bridge / env.subnet ...
 *   await env.stop(); expect(await env.leftovers()).toEqual([]);
 *
 * The runtime handlers are `runc` (the default) and `vhive` (containerd-shim-vhive-v2 from PATH
 * or `shimDirs`). `release` picks the containerd: Debian's 1.6, or 2 (the Kubernetes kit's,
 * scripts/lib/k8s-kit.sh, built once); `env.ctr` is the ctr of the same release.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { z } from "zod";
import { SHIM_BINARY } from "../../src/containerd/shim/names.js";
import { ChildHandle } from "../../src/shared/child.js";
import { packagePath } from "../../src/shared/package-root.js";
import { stateDir } from "./harness.js";

const run = promisify(execFile);

const SCRIPT = packagePath("scripts", "lib", "private-containerd.sh");
const KIT_SCRIPT = packagePath("scripts", "lib", "k8s-kit.sh");
const IMAGES_SCRIPT = packagePath("scripts", "lib", "cri-images.sh");
const READY_TIMEOUT_MS = 60_000;
/** Stopping removes every pod through containerd first; a few seconds per pod at most. */
const STOP_TIMEOUT_MS = 120_000;

/**
 * A directory holding this checkout's shim under the name containerd runs it by (for
 * startPrivateContainerd's shimDirs), whatever shim is installed on the host.
 */
export async function shimBinDir(parent: string): Promise<string> {
  const bin = join(parent, "bin");
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, SHIM_BINARY), `#!/bin/sh\nexec ${process.execPath} ${packagePath("dist", "shim", "main.js")} "$@"\n`);
  await chmod(join(bin, SHIM_BINARY), 0o755);
  return bin;
}

export type CriImageName = "pause" | "busybox" | "resource-consumer" | "volume-copy-up" | "volume-ownership";

/** The containerd releases the containerd and pod tests run against. */
export const CONTAINERD_RELEASES = ["1.6", "2"] as const;
export type ContainerdRelease = (typeof CONTAINERD_RELEASES)[number];

/** The folder holding containerd, ctr and containerd-shim-runc-v2 of a release (undefined: Debian's, on PATH). */
export async function containerdDir(release: ContainerdRelease): Promise<string | undefined> {
  if (release === "1.6") return undefined;
  // Built by scripts/test.sh before the suite; a build here would take minutes.
  const { stdout } = await run("bash", [KIT_SCRIPT, "dir", "containerd"], { maxBuffer: 1 << 20, timeout: 1_800_000 });
  return stdout.trim();
}

export interface PrivateContainerdOptions {
  /** Which containerd (default Debian's 1.6). */
  release?: ContainerdRelease;
  /** Directories put first on containerd's PATH, where it finds runtime shims. */
  shimDirs?: string[];
  /** containerd's log level (default info); the log is `log`. */
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Where the built image archives are cached (default: `cri/images` in the test state directory). */
  imageCacheDir?: string;
}

const ReadyEvent = z
  .object({
    event: z.literal("ready"),
    dir: z.string(),
    socket: z.string(),
    criRoot: z.string(),
    binName: z.string(),
    bridge: z.string(),
    network: z.string(),
    subnet: z.string(),
    gateway: z.string(),
    log: z.string(),
  })
  .strict();
const StartedEvent = z.object({ event: z.literal("started"), pid: z.number().int().positive() }).strict();
const Event = z.discriminatedUnion("event", [ReadyEvent, StartedEvent]);

export type PrivateContainerdInfo = Omit<z.infer<typeof ReadyEvent>, "event">;

export interface PrivateContainerd extends PrivateContainerdInfo, AsyncDisposable {
  /** The ctr of the instance's release. */
  readonly ctr: string;
  /** containerd's current pid (it changes when containerd is restarted). */
  readonly pid: number;
  /** Build (once, cached) and import the images into the CRI plugin's namespace. */
  importImages(names?: CriImageName[]): Promise<void>;
  /** Kill containerd (SIGKILL by default) and wait until its restarted successor answers. */
  restartContainerd(signal?: NodeJS.Signals): Promise<void>;
  /** Stop every pod, containerd and its shims, and remove everything the instance made. */
  stop(): Promise<void>;
  /**
   * What is still there after stop(): processes, mounts, links, routes, files, and the cgroups
   * and CNI results of the pods and containers named. Empty when clean.
   */
  leftovers(ids?: { pods?: string[]; containers?: string[] }): Promise<string[]>;
}

export async function startPrivateContainerd(options: PrivateContainerdOptions = {}): Promise<PrivateContainerd> {
  if (process.getuid?.() !== 0) throw new Error("a private containerd needs root (network namespaces, mounts, a bridge): run the tests as root");
  const dir = await containerdDir(options.release ?? "1.6");
  const ctr = dir ? join(dir, "ctr") : "ctr";
  const args = [SCRIPT, "run"];
  if (dir) args.push("--containerd", dir);
  for (const dir of options.shimDirs ?? []) args.push("--shim-dir", dir);
  if (options.logLevel) args.push("--log-level", options.logLevel);
  const child = new ChildHandle("private-containerd", "bash", args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.process.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  const events = new EventLog();
  createInterface({ input: child.process.stdout! }).on("line", (line) => events.push(line));

  const failure = (what: string) => new Error(`private containerd: ${what}\n${stderr.trim()}`);
  const ready = events.next("ready");
  const exited = child.exited.then((info) => {
    throw failure(`the script exited during start (code ${info.code}, signal ${info.signal})`);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(failure(`not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
  });
  let info: PrivateContainerdInfo;
  try {
    const { event: _, ...rest } = ReadyEvent.parse(await Promise.race([ready, exited, timeout]));
    info = rest;
  } catch (error) {
    await child.stop(STOP_TIMEOUT_MS);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  exited.catch(() => {}); // from here on an exit is stop()'s to report

  const imageCacheDir = options.imageCacheDir;
  let stopped: Promise<void> | undefined;
  const env: PrivateContainerd = {
    ...info,
    ctr,
    get pid() {
      return events.lastPid;
    },
    async importImages(names = ["pause", "busybox"]) {
      const cache = imageCacheDir ?? join(stateDir(), "cri", "images");
      await run("bash", [IMAGES_SCRIPT, "import", "--address", info.socket, "--cache", cache, ...names], { maxBuffer: 1 << 20 });
    },
    async restartContainerd(signal = "SIGKILL") {
      const started = events.next("started");
      process.kill(events.lastPid, signal);
      await started;
      await waitForContainerd(ctr, info.socket, READY_TIMEOUT_MS);
    },
    stop() {
      stopped ??= (async () => {
        // Closing stdin is the script's graceful stop; SIGTERM (then SIGKILL) only if it hangs.
        child.process.stdin?.end();
        let stopTimer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => {
          stopTimer = setTimeout(() => resolve("late"), STOP_TIMEOUT_MS);
        });
        const result = await Promise.race([child.exited, late]);
        clearTimeout(stopTimer);
        const exit = result === "late" ? await child.stop(10_000) : result;
        if (exit.code !== 0) throw failure(`stopping failed (code ${exit.code}, signal ${exit.signal})`);
      })();
      return stopped;
    },
    leftovers: (ids = {}) => leftoversOf(info, ids),
    async [Symbol.asyncDispose]() {
      await env.stop();
    },
  };
  return env;
}

/** The script's JSON events, awaited by kind; the latest containerd pid. */
class EventLog {
  #waiters: { kind: string; resolve: (event: z.infer<typeof Event>) => void }[] = [];
  lastPid = 0;
  push(line: string): void {
    let event: z.infer<typeof Event>;
    try {
      event = Event.parse(JSON.parse(line));
    } catch {
      return; // not an event: the script writes nothing else on stdout, but be lenient
    }
    if (event.event === "started") this.lastPid = event.pid;
    const waiters = this.#waiters.filter((waiter) => waiter.kind === event.event);
    this.#waiters = this.#waiters.filter((waiter) => waiter.kind !== event.event);
    for (const waiter of waiters) waiter.resolve(event);
  }
  next(kind: "ready" | "started"): Promise<z.infer<typeof Event>> {
    return new Promise((resolve) => this.#waiters.push({ kind, resolve }));
  }
}

/** Until `ctr version` answers on the socket (containerd has no readiness message). */
async function waitForContainerd(ctr: string, socket: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await run(ctr, ["--address", socket, "version"], { timeout: 5000 });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`containerd did not answer on ${socket} within ${timeoutMs} ms: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Everything an instance could leave on the host, looked for after it stopped. */
async function leftoversOf(info: PrivateContainerdInfo, ids: { pods?: string[]; containers?: string[] }): Promise<string[]> {
  const found: string[] = [];
  if (existsSync(info.dir)) found.push(`directory ${info.dir}`);
  const { stdout: links } = await run("ip", ["-o", "link", "show"]);
  for (const line of links.split("\n")) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name === info.bridge || line.includes(` master ${info.bridge} `)) found.push(`link ${name}`);
  }
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  for (const line of mountinfo.split("\n")) {
    const mountPoint = line.split(" ")[4];
    if (mountPoint?.startsWith(`${info.dir}/`)) found.push(`mount ${mountPoint}`);
  }
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(info.dir)) found.push(`process ${entry}: ${cmdline.replaceAll("\0", " ").trim()}`);
  }
  const pods = ids.pods ?? [];
  for (const file of await readdir("/var/lib/cni/results").catch(() => [])) {
    if (file.startsWith(`${info.network}-`) || pods.some((id) => file === `cni-loopback-${id}-lo`)) found.push(`file /var/lib/cni/results/${file}`);
  }
  // runc's cgroups: /<containerd namespace>/<id> in every hierarchy; CRI's namespace is k8s.io.
  for (const hierarchy of await readdir("/sys/fs/cgroup").catch(() => [])) {
    for (const id of [...pods, ...(ids.containers ?? [])]) {
      const cgroup = `/sys/fs/cgroup/${hierarchy}/k8s.io/${id}`;
      if (existsSync(cgroup)) found.push(`cgroup ${cgroup}`);
    }
  }
  const { stdout: routes } = await run("ip", ["-4", "route", "show", "table", "all", "root", info.subnet]);
  if (routes.trim()) found.push(`route ${routes.trim()}`);
  return found;
}
