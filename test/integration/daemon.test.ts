/**
 * The daemon over HTTP with real microVMs: a reap function goes boot -> record -> prefetch ->
 * warm as keep-alive expires between requests, then `vhive bench load` drives it from zero; a
 * request whose instance's QEMU is killed gets 502 ERR_INSTANCE_FAILED; a daemon killed with
 * SIGKILL mid-run comes back with its function, snapshot and working set, cleaning up the VM it
 * left behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { startDaemon, type Daemon } from "../../src/daemon/index.js";
import { MemoryLog, NoOpLog } from "../../src/shared/log.js";
import { packagePath } from "../../src/shared/package-root.js";
import { makeTempDir } from "../../src/shared/tmp.js";
import { StatePaths } from "../../src/shared/paths.js";
import { SnapshotStore } from "../../src/snapshot/index.js";
import { freeLoopbackPort } from "../../src/vm/index.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { api, invokeGreeting, removeSnapshotsOf, uniqueName, waitScaledToZero } from "./daemon-harness.js";
import { expectNothingLeft, qemuProcessesOfTests, runCli, stateDir } from "./harness.js";

const cleanups = new Cleanups();

afterEach(async () => {
  await cleanups.run();
  await expectNothingLeft();
});

describe("the daemon", () => {
  it("a reap function starts boot, then record, then prefetch as keep-alive expires, then warm", async () => {
    const fn = uniqueName("reap");
    cleanups.push(() => removeSnapshotsOf(fn));
    const daemon: Daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    const base = daemon.url;

    const deployed = await api(base, "PUT", `/functions/${fn}`, { image: inject("helloworldId"), start: "reap", keepaliveMs: 2000 });
    expect(deployed.status).toBe(201);

    const starts: string[] = [];
    const invoke = async (data: string) => {
      const json = await invokeGreeting(base, fn, data);
      starts.push(json.start);
      return json;
    };

    const boot = await invoke("boot");
    expect(Object.keys(boot.breakdown)).toEqual(["queueMs", "qemuStartMs", "kernelBootMs", "initMs", "functionReadyMs", "invokeMs"]);
    await waitScaledToZero(base, fn);
    const snapshots = (await api(base, "GET", `/functions/${fn}/snapshots`)).json.snapshots;
    expect(snapshots).toMatchObject([{ memMib: 256, workingSet: null }]);

    const record = await invoke("record");
    expect(record.breakdown).toMatchObject({ loadVmmMs: expect.any(Number), restoreMs: expect.any(Number), connectMs: expect.any(Number) });
    await waitScaledToZero(base, fn);
    const [withWs] = (await api(base, "GET", `/functions/${fn}/snapshots`)).json.snapshots;
    expect(withWs.workingSet).toMatchObject({ pages: expect.any(Number), input: "record" });
    expect(withWs.workingSet.pages).toBeGreaterThan(100);

    const prefetch = await invoke("prefetch");
    expect(prefetch.breakdown.memoryWaitMs).toBeGreaterThanOrEqual(0);
    await invoke("warm");
    expect(starts).toEqual(["boot", "record", "prefetch", "warm"]);
    // The cold starts got faster: a restore is far below a boot.
    expect(prefetch.totalMs).toBeLessThan(boot.totalMs / 3);

    const records = (await api(base, "GET", `/functions/${fn}/invocations`)).json.invocations;
    expect(records.map((r: { start: string }) => r.start)).toEqual(["boot", "record", "prefetch", "warm"]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain(`vhive_invocations_total{function="${fn}",start="prefetch",status="ok"} 1`);

    // `vhive bench load` on the scaled-to-zero function: the first request waits for a prefetch
    // start, and the open loop keeps sending meanwhile, so later requests find warm instances.
    await waitScaledToZero(base, fn);
    const out = await makeTempDir("bench-load-test");
    cleanups.push(() => out.remove());
    const load = await runCli(["bench", "load", "--function", fn, "--rps", "4", "--duration", "3s", "--arrival", "uniform", "--out", out.path, "--json"], { env: { ...process.env, VHIVE_URL: base } });
    expect(load.code, load.stderr).toBe(0);
    const loaded = JSON.parse(load.stdout);
    expect(loaded.rows).toHaveLength(12);
    expect(loaded.rows.every((row: { status: string }) => row.status === "ok")).toBe(true);
    expect(loaded.rows[0]).toMatchObject({ start: "prefetch", startMs: expect.any(Number) });
    expect(loaded.rows.some((row: { start: string }) => row.start === "warm")).toBe(true);
    expect(loaded.summary).toMatchObject({ sent: 12, ok: 12, errors: {}, offeredRps: 4 });
    expect((await readFile(join(out.path, "load.csv"), "utf8")).trim().split("\n")).toHaveLength(13);
    expect(await readFile(join(out.path, "report.md"), "utf8")).toContain("## Load");
    expect(await readFile(join(out.path, "load-latency.svg"), "utf8")).toMatch(/^<svg/);
    expect((await api(base, "DELETE", `/functions/${fn}`)).status).toBe(200);
  });

  it("a request whose instance's QEMU is killed mid-request gets 502 ERR_INSTANCE_FAILED, and the log says QEMU was killed", async () => {
    const fn = uniqueName("killed");
    cleanups.push(() => removeSnapshotsOf(fn));
    const log = new MemoryLog();
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log, memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    const base = daemon.url;
    // Boot once and let keep-alive save the snapshot; then a long keep-alive, so the restored
    // instance (served by a pager: it records) stays while the test kills it.
    expect((await api(base, "PUT", `/functions/${fn}`, { image: inject("helloworldId"), start: "reap", keepaliveMs: 2000 })).status).toBe(201);
    expect((await api(base, "POST", `/functions/${fn}/invoke`, { data: "boot" })).json.start).toBe("boot");
    await waitScaledToZero(base, fn);
    expect((await api(base, "PUT", `/functions/${fn}`, { image: inject("helloworldId"), start: "reap", keepaliveMs: 300_000 })).status).toBe(200);
    expect((await api(base, "POST", `/functions/${fn}/invoke`, { data: "record" })).json.start).toBe("record");
    // Once the working set is written, the instance takes the next request straight to its VM.
    await expect.poll(async () => (await api(base, "GET", `/functions/${fn}/snapshots`)).json.snapshots[0]?.workingSet?.input, { timeout: 30_000 }).toBe("record");
    const [instance] = (await api(base, "GET", `/functions/${fn}`)).json.instances;

    // Stopped, QEMU holds the next request unanswered; then it is killed with the request in flight.
    process.kill(instance.pid, "SIGSTOP");
    const reply = api(base, "POST", `/functions/${fn}/invoke`, { data: "doomed" });
    await expect.poll(async () => (await api(base, "GET", `/functions/${fn}`)).json.instances[0]?.inflight, { timeout: 10_000 }).toBe(1);
    process.kill(instance.pid, "SIGKILL");
    const { status, json } = await reply;
    expect(status).toBe(502);
    expect(json.code, JSON.stringify(json)).toBe("ERR_INSTANCE_FAILED");
    expect(json.message).toBe(`instance ${instance.id} of function ${fn} died during the request: QEMU was killed by SIGKILL while the VM was running`);

    const died = log.lines.find((line) => line.msg === "instance died");
    expect(died?.fields).toMatchObject({ fn, instance: instance.id, code: "ERR_VM_EXITED", error: "QEMU was killed by SIGKILL while the VM was running" });
    expect(JSON.stringify(log.lines)).not.toContain("the pager exited");
    // The pool dropped it: the next request gets a new instance.
    const next = await api(base, "POST", `/functions/${fn}/invoke`, { data: "next" });
    expect(next.json).toMatchObject({ text: "Hello, next!" });
    expect(next.json.instance).not.toBe(instance.id);
  });

  it("after kill -9 mid-run, a restarted daemon cleans up the VM left behind and still has the function, its snapshot and its working set", async () => {
    const fn = uniqueName("crash");
    cleanups.push(() => removeSnapshotsOf(fn));
    const port = await freeLoopbackPort();
    const base = `http://127.0.0.1:${port}`;
    const serve = () => startServe(port);

    let daemon = await serve();
    cleanups.push(() => stopServe(daemon));
    // The CLI drives this daemon through VHIVE_URL.
    const cli = async (...args: string[]) => {
      const result = await runCli(args, { env: { ...process.env, VHIVE_URL: base } });
      expect(result.code, result.stderr).toBe(0);
      return result.stdout;
    };
    await cli("deploy", fn, "--image", inject("helloworldId"), "--start", "reap", "--keepalive", "2s");
    const first = JSON.parse(await cli("invoke", fn, "--data", "a", "--json"));
    expect(first).toMatchObject({ response: { message: "Hello, a!" }, start: "boot", totalMs: expect.any(Number), breakdown: { kernelBootMs: expect.any(Number) } });
    await waitScaledToZero(base, fn);
    expect((await api(base, "POST", `/functions/${fn}/invoke`, { data: "b" })).json.start).toBe("record");
    await waitScaledToZero(base, fn);
    expect((await api(base, "POST", `/functions/${fn}/invoke`, { data: "c" })).json.start).toBe("prefetch");

    // Mid-run: the prefetch instance is alive when the daemon dies.
    const [instance] = (await api(base, "GET", `/functions/${fn}`)).json.instances;
    expect(await qemuProcessesOfTests()).toContain(instance.pid);
    // A restored instance runs under QEMU's seccomp sandbox (mode 2: filter).
    expect(await readFile(`/proc/${instance.pid}/status`, "utf8")).toMatch(/^Seccomp:\s+2$/m);
    daemon.kill("SIGKILL");
    await new Promise((resolve) => daemon.once("exit", resolve));
    expect(await qemuProcessesOfTests()).toContain(instance.pid); // orphaned, still running

    daemon = await serve();
    expect(await qemuProcessesOfTests()).not.toContain(instance.pid);
    expect((await api(base, "GET", `/functions/${fn}`)).json.function).toMatchObject({ name: fn, start: "reap", keepaliveMs: 2000 });
    const [snapshot] = (await api(base, "GET", `/functions/${fn}/snapshots`)).json.snapshots;
    expect(snapshot.workingSet).toMatchObject({ input: "b" });
    const after = await api(base, "POST", `/functions/${fn}/invoke`, { data: "d" });
    expect(after.json).toMatchObject({ start: "prefetch", text: "Hello, d!" });
    const records = JSON.parse(await cli("logs", fn, "--json"));
    expect(records.map((r: { start: string }) => r.start)).toEqual(["boot", "record", "prefetch", "prefetch"]);
    expect(JSON.parse(await cli("ls", "--json")).functions.map((f: { name: string }) => f.name)).toContain(fn);
    expect(await cli("rm", fn)).toContain(`removed ${fn}`);
    const gone = await runCli(["invoke", fn], { env: { ...process.env, VHIVE_URL: base } });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("error [ERR_FUNCTION_NOT_FOUND]");
    expect(await stopServe(daemon)).toBe(0);
  });
});

/** `vhive serve` as a child process; resolves once it listens. */
async function startServe(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [packagePath("dist", "cli", "main.js"), "--state", stateDir(), "serve", "--listen", `127.0.0.1:${port}`, "--memory-budget", "2048"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes("vhive daemon listening on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`vhive serve exited with ${code}:\n${stderr}`)));
  });
  return child;
}

/** SIGTERM (graceful), resolving with the exit code; SIGKILL after 60 s. */
async function stopServe(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}
