/**
 * Interop with a real Go ttrpc peer: Debian's containerd-shim-runc-v2 (containerd 1.6), started
 * the way containerd starts a shim (runtime/v2/binary.go, shim/util.go): `-namespace NS
 * -address ADDR -publish-binary BIN -id ID start` in the bundle directory, TTRPC_ADDRESS in the
 * environment, the bundle's `log` FIFO read by the caller. `start` forks the serving shim,
 * writes `address` in the bundle and prints the socket address; the serving shim outlives it
 * (reparented away from us), so the test finds it by its -id to end it if anything fails.
 * Needs root (the shim's socket lives in /run/containerd/s) and the containerd package; boots
 * no VM and takes well under a second.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NAMESPACE_METADATA_KEY, shim } from "../../../src/containerd/api.js";
import { GrpcCode, TtrpcStatusError, connectTtrpc, socketPathOf } from "../../../src/containerd/ttrpc/index.js";
import { ChildHandle } from "../../../src/shared/child.js";
import { isVhiveError } from "../../../src/shared/errors.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const SHIM = "/usr/bin/containerd-shim-runc-v2";
const NAMESPACE = "vhive-ttrpc-test";
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Pids of the live (not zombie) processes whose command line has `-id ID`. */
function shimPids(id: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const state = readFileSync(`/proc/${entry}/stat`, "utf8").replace(/^.*\) /, "")[0];
      if (state !== "Z" && args[0] === SHIM && args.some((arg, i) => arg === "-id" && args[i + 1] === id)) pids.push(Number(entry));
    } catch {
      // the process ended while we read it
    }
  }
  return pids;
}

/** Remove the directories the shim made under /run/containerd, if they were not there before. */
function removeRunDirsIfNew(): () => Promise<void> {
  const made = ["/run/containerd/s", "/run/containerd"].filter((dir) => !existsSync(dir));
  return async () => {
    for (const dir of made) await rmdir(dir).catch(() => {}); // not empty: someone else uses it now
  };
}

describe("the ttrpc client against containerd-shim-runc-v2 (Go ttrpc)", () => {
  it("gets real answers from Connect, State and an unknown method, and Shutdown ends the shim", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test needs root: the shim's socket lives in /run/containerd/s");
    if (!existsSync(SHIM)) throw new Error(`${SHIM} is missing: run scripts/setup.sh (it installs the containerd package)`);

    const id = `ttrpc-${process.pid}-${Date.now()}`;
    cleanups.push(removeRunDirsIfNew());
    const dir = await makeTempDir("runc-shim");
    cleanups.push(() => dir.remove());
    const bundle = join(dir.path, "bundle");
    await mkdir(bundle);
    // The shim reads the OCI spec's annotations at start; an empty spec has none.
    await writeFile(join(bundle, "config.json"), "{}");
    // containerd makes this FIFO and reads the serving shim's log from it; the shim blocks
    // until a reader opens it. `cat` reads it, and gets EOF when the shim's last fd closes.
    execFileSync("mkfifo", [join(bundle, "log")]);
    const log = new ChildHandle("shim log", "cat", [join(bundle, "log")], { stdio: ["ignore", "pipe", "ignore"] });
    cleanups.push(() => log.destroy());
    let logText = "";
    log.process.stdout!.on("data", (chunk: Buffer) => (logText += chunk.toString()));
    cleanups.push(async () => {
      for (const pid of shimPids(id)) process.kill(pid, "SIGKILL");
      const address = await readFile(join(bundle, "address"), "utf8").catch(() => undefined);
      if (address !== undefined) await rm(socketPathOf(address.trim()), { force: true });
    });

    const start = new ChildHandle(
      "shim start",
      SHIM,
      ["-namespace", NAMESPACE, "-address", join(dir.path, "containerd.sock"), "-publish-binary", "/usr/bin/containerd", "-id", id, "start"],
      { cwd: bundle, env: { ...process.env, TTRPC_ADDRESS: join(dir.path, "containerd.sock.ttrpc") }, stdio: ["ignore", "pipe", "pipe"] },
    );
    cleanups.push(() => start.destroy());
    let printed = "";
    start.process.stdout!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    start.process.stderr!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    const started = await start.exited;
    expect(started.code, `shim start: ${printed}`).toBe(0);
    const address = printed.trim();
    expect(address).toMatch(/^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    expect((await readFile(join(bundle, "address"), "utf8")).trim()).toBe(address);

    const client = await connectTtrpc(address, { timeoutMs: 5_000, metadata: { [NAMESPACE_METADATA_KEY]: NAMESPACE } });
    cleanups.push(() => client.destroy());
    const task = client.service(shim.TaskDefinition);

    const connected = await task.connect({ id });
    expect(connected.taskPid).toBe(0); // no task was created
    expect(shimPids(id)).toEqual([connected.shimPid]);

    const notFound = await task.state({ id: "no-such-task" }).catch((error: unknown) => error);
    expect(notFound, `State answered ${JSON.stringify(notFound)}`).toBeInstanceOf(TtrpcStatusError);
    expect((notFound as TtrpcStatusError).grpcCode).toBe(GrpcCode.NOT_FOUND);
    expect((notFound as TtrpcStatusError).grpcMessage).toMatch(/not found/);

    const unknown = (await client.request(shim.TaskDefinition.fullName, "Teleport", new Uint8Array(0)).catch((error: unknown) => error)) as TtrpcStatusError;
    expect([unknown.grpcCode, unknown.grpcMessage]).toEqual([GrpcCode.UNIMPLEMENTED, "method Teleport"]);

    // The shim may exit before its answer is written; containerd ignores that too.
    await task.shutdown({ id, now: true }).catch((error: unknown) => {
      if (!isVhiveError(error, "ERR_TTRPC_DISCONNECTED")) throw error;
    });
    await client.closed;
    await log.exited; // every fd of the serving shim is closed: it has exited
    await expect.poll(() => shimPids(id), { timeout: 5_000 }).toEqual([]);
    expect(existsSync(socketPathOf(address)), "the shim removes its socket").toBe(false);
    expect(logText).toContain("starting signal loop");
  });
});
