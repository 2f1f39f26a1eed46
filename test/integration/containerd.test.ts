/**
 * vhive as a containerd runtime, against a real containerd started by the test (Debian's 1.6,
 * then containerd 2 from the Kubernetes kit, each a private instance:
 * scripts/lib/private-containerd.sh through containerd-env.ts) and
 * containerd-shim-vhive-v2 from this checkout: `ctr run --runtime io.containerd.vhive.v2` of
 * helloworld and json_serdes answers, the second and third runs restore (record, then
 * prefetch); Kill, Delete, Wait and exit statuses behave as with runc; containerd killed and
 * restarted reconnects to the running shim; a shim killed takes its VM with it; bad input is
 * refused through ctr with what to do.
 */
import { execFile, spawn } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildImage, exportImage, ImageStore } from "../../src/image/index.js";
import { StatePaths } from "../../src/shared/paths.js";
import { packagePath } from "../../src/shared/package-root.js";
import { makeTempDir, type TempDir } from "../../src/shared/tmp.js";
import { SnapshotStore } from "../../src/snapshot/index.js";
import { CONTAINERD_RELEASES, shimBinDir, startPrivateContainerd, type PrivateContainerd } from "./containerd-env.js";
import { expectNothingLeft, flipBytes, runCli, stateDir } from "./harness.js";

const run = promisify(execFile);
const RUNTIME = "io.containerd.vhive.v2";

describe.each(CONTAINERD_RELEASES)("on containerd %s", (release) => {
  let work: TempDir;
  let containerd: PrivateContainerd;
  /** Makes this run's images its own (a new ext4, new snapshots), whatever an earlier run or release left. */
  const RUN_ENV = `VHIVE_TEST_RUN=${Date.now().toString(36)}-${release}`;

  async function ctr(args: string[], options: { allowFail?: boolean } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(containerd.ctr, ["--address", containerd.socket, ...args], { maxBuffer: 1 << 24, timeout: 280_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      if (!options.allowFail) throw new Error(`ctr ${args.join(" ")} failed (${failed.code}): ${failed.stderr}`);
      return { code: typeof failed.code === "number" ? failed.code : 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
    }
  }

  /** The start record the shim writes into the bundle. */
  async function startRecord(id: string): Promise<{ start: string; snapshotId?: string; image: string; pid: number }> {
    return JSON.parse(await readFile(join(containerd.dir, "state", "io.containerd.runtime.v2.task", "default", id, "vhive-start.json"), "utf8"));
  }

  async function taskStatus(id: string): Promise<string | undefined> {
    const { stdout } = await ctr(["task", "ls"]);
    return stdout.split("\n").map((line) => line.trim().split(/\s+/)).find((fields) => fields[0] === id)?.[2];
  }

  async function waitStatus(id: string, status: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await taskStatus(id)) !== status) {
      if (Date.now() > deadline) throw new Error(`task ${id} is not ${status} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Kill (SIGTERM: the graceful stop), wait for the exit, delete; returns the exit status ctr reports. */
  async function stopContainer(id: string, signal = "SIGTERM"): Promise<number> {
    await ctr(["task", "kill", "-s", signal, id]);
    await waitStatus(id, "STOPPED");
    const deleted = await ctr(["task", "delete", id]);
    await ctr(["container", "rm", id]);
    return Number(/exit code (\d+)/.exec(deleted.stderr)?.[1] ?? 0);
  }

  async function call(data: string, options: { netns?: string } = {}): Promise<string> {
    const args = [packagePath("dist", "cli", "main.js"), "call", "127.0.0.1:50051", "--data", data, "--wait", "60s"];
    const [command, ...rest] = options.netns ? ["nsenter", `--net=${options.netns}`, "--", process.execPath, ...args] : [process.execPath, ...args];
    return (await run(command!, rest)).stdout.trim();
  }

  async function runDetached(image: string, id: string, extra: string[] = []): Promise<void> {
    await ctr(["run", "-d", "--null-io", "--net-host", "--env", RUN_ENV, ...extra, "--runtime", RUNTIME, image, id]);
  }

  beforeAll(async () => {
    work = await makeTempDir("containerd-test");
    const bin = await shimBinDir(work.path);
    process.env.VHIVE_STATE = stateDir(); // containerd passes its environment to the shim
    const paths = new StatePaths(stateDir());
    for (const name of ["helloworld", "json_serdes"]) {
      await buildImage(paths, `functions/${name}`);
      await exportImage(paths, name, join(work.path, `${name}.tar`), { ref: `vhive.local/${name}:test` });
    }
    containerd = await startPrivateContainerd({ shimDirs: [bin], release });
    for (const name of ["helloworld", "json_serdes"]) await ctr(["images", "import", join(work.path, `${name}.tar`)]);
  }, 900_000);

  afterAll(async () => {
    await containerd?.stop();
    expect(await containerd.leftovers()).toEqual([]);
    // The images and snapshots the shim made for this run's containers.
    const paths = new StatePaths(stateDir());
    const images = (await new ImageStore(paths).list()).filter((image) => image.source.kind === "container");
    const snapshots = new SnapshotStore(paths);
    for (const snapshot of (await snapshots.list({ includeQuarantined: true })).snapshots) if (images.some((image) => image.id === snapshot.meta.imageId)) await snapshots.remove(snapshot.meta.id);
    for (const image of images) await new ImageStore(paths).remove(image.id);
    await work.remove();
    await expectNothingLeft();
  }, 300_000);

  // A test that failed midway leaves its container running: end it, so the next one has the port.
  afterEach(async () => {
    const { stdout } = await ctr(["task", "ls", "-q"]);
    for (const id of stdout.split("\n").filter(Boolean)) {
      await ctr(["task", "kill", "-s", "SIGKILL", id], { allowFail: true });
      await waitStatus(id, "STOPPED").catch(() => {});
      await ctr(["task", "delete", id], { allowFail: true });
    }
    const containers = await ctr(["container", "ls", "-q"]);
    for (const id of containers.stdout.split("\n").filter(Boolean)) await ctr(["container", "rm", id], { allowFail: true });
  });

  describe("ctr run --runtime io.containerd.vhive.v2", () => {
    for (const [name, data, reply] of [
      ["helloworld", "containerd", /^Hello, containerd!$/],
      ["json_serdes", "", /^json A: parsed \d+ bytes/],
    ] as const) {
      it(`runs ${name} as a microVM that answers: booted first, then restored recording its working set, then prefetching`, async () => {
        const starts: string[] = [];
        for (const run of [1, 2, 3]) {
          const id = `${name.replace("_", "-")}-${run}`;
          await runDetached(`vhive.local/${name}:test`, id);
          expect(await taskStatus(id)).toBe("RUNNING");
          expect(await call(data)).toMatch(reply);
          const record = await startRecord(id);
          starts.push(record.start);
          // State and Pids report the QEMU process.
          const pids = await ctr(["task", "ps", id]);
          expect(pids.stdout).toContain(String(record.pid));
          expect(await readFile(`/proc/${record.pid}/cmdline`, "utf8")).toMatch(/^qemu-system-x86_64/);
          expect(await stopContainer(id)).toBe(143); // SIGTERM, as runc reports it
        }
        expect(starts).toEqual(["boot", "record", "prefetch"]);
      });
    }

    it("shows the function's output without -d, and exits with its entrypoint's status", async () => {
      const result = await ctr(
        ["run", "--rm", "--net-host", "--env", RUN_ENV, "--annotation", "dev.vhive.start=boot", "--runtime", RUNTIME, "vhive.local/helloworld:test", "exit-7", "sh", "-c", "echo hello from the entrypoint; exit 7"],
        { allowFail: true },
      );
      expect(result.code, result.stderr).toBe(7);
      expect(result.stdout).toContain("hello from the entrypoint");
      expect(result.stderr + result.stdout).toContain("vhive: the function's entrypoint exited with status 7");
    });

    it("without --net-host, the function answers on localhost of the container's own network namespace, which goes with it", async () => {
      const id = "own-netns";
      await ctr(["run", "-d", "--null-io", "--env", RUN_ENV, "--runtime", RUNTIME, "vhive.local/helloworld:test", id]);
      const namespaces = (await readdir("/run/netns")).filter((name) => name.startsWith("vhive-"));
      expect(namespaces).toHaveLength(1);
      expect(await call("netns", { netns: `/run/netns/${namespaces[0]}` })).toBe("Hello, netns!");
      await stopContainer(id);
      await waitFor(async () => !(await readdir("/run/netns").catch(() => [] as string[])).includes(namespaces[0]!));
    });

    it("a containerd killed with SIGKILL and restarted reconnects to the shim: the container runs on and stops", async () => {
      const id = "reconnect";
      await runDetached("vhive.local/helloworld:test", id);
      await containerd.restartContainerd("SIGKILL");
      expect(await taskStatus(id)).toBe("RUNNING");
      expect(await call("after restart")).toBe("Hello, after restart!");
      expect(await stopContainer(id)).toBe(143);
    });

    it("a shim killed with SIGKILL takes its VM with it, and containerd reports the container exited", async () => {
      const id = "shim-killed";
      await runDetached("vhive.local/helloworld:test", id);
      const { pid: qemu } = await startRecord(id);
      const shim = Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${qemu}/status`, "utf8"))![1]);
      expect(await readFile(`/proc/${shim}/cmdline`, "utf8")).toContain("dist/shim/main.js");
      const events = spawn(containerd.ctr, ["--address", containerd.socket, "events"], { stdio: ["ignore", "pipe", "ignore"] });
      let printed = "";
      events.stdout.on("data", (chunk: Buffer) => (printed += chunk.toString()));
      try {
        await new Promise((resolve) => setTimeout(resolve, 500)); // ctr events subscribes
        process.kill(shim, "SIGKILL");
        // containerd sees the shim's connection close, runs its delete, and reports the exit.
        await waitFor(async () => /\/tasks\/exit .*"container_id":"shim-killed".*"exit_status":137/.test(printed));
        await waitFor(async () => (await taskStatus(id)) === undefined);
      } finally {
        events.kill();
      }
      await waitFor(async () => !(await readFile(`/proc/${qemu}/cmdline`, "utf8").catch(() => "")).startsWith("qemu"));
      await ctr(["container", "rm", id]);
    });

    it("refuses bad input through ctr, saying what is wrong, and keeps a damaged snapshot aside", async () => {
      const bogus = await ctr(["run", "-d", "--null-io", "--net-host", "--annotation", "dev.vhive.start=bogus", "--runtime", RUNTIME, "vhive.local/helloworld:test", "bogus"], { allowFail: true });
      expect(bogus.code).not.toBe(0);
      expect(bogus.stderr).toContain("annotation dev.vhive.start=bogus is not a start policy");
      await ctr(["container", "rm", "bogus"], { allowFail: true });

      // A snapshot whose device state was altered: skipped (kept, listed as damaged), the container boots.
      await runDetached("vhive.local/helloworld:test", "before-damage");
      const { snapshotId } = await startRecord("before-damage");
      await stopContainer("before-damage");
      const [snapshot] = (await new SnapshotStore(new StatePaths(stateDir())).list()).snapshots.filter((s) => s.meta.id === snapshotId);
      await flipBytes(snapshot!.statePath, 100);
      await runDetached("vhive.local/helloworld:test", "after-damage");
      expect(await call("still here")).toBe("Hello, still here!");
      expect((await startRecord("after-damage")).start).toBe("boot");
      const listed = await runCli(["snapshot", "ls", "--json"]);
      expect(JSON.parse(listed.stdout).damaged.map((d: { id: string }) => d.id)).toContain(snapshotId);
      await stopContainer("after-damage", "SIGKILL");
    });
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
