/**
 * Kubernetes pods on vhive, tested through the interface kubelet uses: containerd's CRI plugin
 * (a private containerd with real CNI, containerd-env.ts) and a CRI client, with runtime handler
 * `vhive`. The pod's sandbox and its sidecar run under runc; the function container is a vhive
 * microVM in the pod's network namespace: it answers at the pod IP from the host and on
 * localhost to the sidecar. The first pod of an image boots (and is saved as it stops), the
 * second restores recording its working set, the third prefetches; eight pods at once all
 * answer; bad pods get a clear CRI error and leave the node's snapshots alone; the Pod of
 * deploy/kubernetes/pod.yaml, sent as kubelet sends a pod, answers, and `vhive bench load --url`
 * drives it at its pod IP; nothing is left. All of it on Debian's containerd 1.6 and on
 * containerd 2 (the Kubernetes kit's), whose pods the shim serves alike.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { LoadReport } from "../../src/bench/index.js";
import { buildImage, exportImage, ImageStore } from "../../src/image/index.js";
import { addressClient, parseFunctionAddress } from "../../src/invoke/index.js";
import { packagePath } from "../../src/shared/package-root.js";
import { StatePaths } from "../../src/shared/paths.js";
import { makeTempDir, type TempDir } from "../../src/shared/tmp.js";
import { SnapshotStore } from "../../src/snapshot/index.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { CONTAINERD_RELEASES, shimBinDir, startPrivateContainerd, type PrivateContainerd } from "./containerd-env.js";
import { connectCri, helloworldSidecarCommand, podSandboxConfig, readCriLog, waitContainerExited, type CriClient, type CriMessage } from "../../src/containerd/cri/index.js";
import { expectNothingLeft, runCli, stateDir } from "./harness.js";

const FUNCTION_IMAGE = "vhive.local/helloworld:cri";
describe.each(CONTAINERD_RELEASES)("on containerd %s", (release) => {
  /** Makes this run's images its own (a new ext4, new snapshots), whatever an earlier run left. */
  const RUN_ENV = { key: "VHIVE_TEST_RUN", value: `cri-${Date.now().toString(36)}-${release}` };
  /** A sidecar of the same image: Python's gRPC client calls the function on the pod's localhost. */
  const SIDECAR_CALL = helloworldSidecarCommand("sidecar");

  const cleanups = new Cleanups();
  let env: PrivateContainerd;
  let cri: CriClient;
  let work: TempDir;
  const podIds: string[] = [];
  const containerIds: string[] = [];

  beforeAll(async () => {
    work = await makeTempDir("cri-vhive");
    cleanups.push(() => work.remove());
    const bin = await shimBinDir(work.path);
    process.env.VHIVE_STATE = stateDir(); // containerd passes its environment to the shim
    const paths = new StatePaths(stateDir());
    await buildImage(paths, "functions/helloworld");
    await exportImage(paths, "helloworld", join(work.path, "helloworld.tar"), { ref: FUNCTION_IMAGE });
    env = await startPrivateContainerd({ shimDirs: [bin], release });
    cleanups.push(() => env.stop());
    await env.importImages(["pause", "busybox"]);
    const { execFile } = await import("node:child_process");
    await new Promise<void>((resolve, reject) =>
      execFile(env.ctr, ["--address", env.socket, "-n", "k8s.io", "images", "import", join(work.path, "helloworld.tar")], (error) => (error ? reject(error) : resolve())),
    );
    cri = connectCri(env.socket);
    cleanups.push(() => cri.close());
  }, 900_000);

  afterAll(async () => {
    await cleanups.run();
    expect(await env.leftovers({ pods: podIds, containers: containerIds })).toEqual([]);
    const paths = new StatePaths(stateDir());
    const images = (await new ImageStore(paths).list()).filter((image) => image.source.kind === "container" && image.config.env[RUN_ENV.key] === RUN_ENV.value);
    const snapshots = new SnapshotStore(paths);
    for (const snapshot of (await snapshots.list({ includeQuarantined: true })).snapshots) if (images.some((image) => image.id === snapshot.meta.imageId)) await snapshots.remove(snapshot.meta.id);
    for (const image of images) await new ImageStore(paths).remove(image.id);
    await expectNothingLeft();
  }, 300_000);

  /** The function's reply at the pod IP, from the host. */
  async function callPod(ip: string, name: string): Promise<string> {
    const client = addressClient(parseFunctionAddress(`${ip}:50051`));
    try {
      await client.waitReady({ timeoutMs: 60_000 });
      return (await client.invoke(name, { timeoutMs: 60_000 })).text;
    } finally {
      client.close();
    }
  }

  /** How the vhive shim started a container's VM (the start record in its bundle). */
  async function startOf(containerId: string): Promise<{ start: string; startMs: number }> {
    return JSON.parse(await readFile(join(env.dir, "state", "io.containerd.runtime.v2.task", "k8s.io", containerId, "vhive-start.json"), "utf8"));
  }

  interface Pod {
    podSandboxId: string;
    config: CriMessage;
    ip: string;
  }

  async function runPod(name: string, annotations: Record<string, string> = {}): Promise<Pod> {
    const config = podSandboxConfig(name, { logDirectory: work.path, annotations });
    const { podSandboxId } = await cri.runtime("RunPodSandbox", { config, runtimeHandler: "vhive" });
    podIds.push(podSandboxId);
    const { status } = await cri.runtime("PodSandboxStatus", { podSandboxId });
    expect(status.state).toBe("SANDBOX_READY");
    return { podSandboxId, config, ip: status.network.ip };
  }

  /** A start of a function container waits until it answers: eight restores at once under TCG take minutes. */
  const START_TIMEOUT_MS = 600_000;

  async function startContainer(pod: Pod, config: CriMessage): Promise<string> {
    const { containerId } = await cri.runtime("CreateContainer", { podSandboxId: pod.podSandboxId, sandboxConfig: pod.config, config });
    containerIds.push(containerId);
    await cri.runtime("StartContainer", { containerId }, { timeoutMs: START_TIMEOUT_MS });
    return containerId;
  }

  function functionContainer(name = "user-container", extra: CriMessage = {}): CriMessage {
    return { metadata: { name }, image: { image: FUNCTION_IMAGE }, envs: [RUN_ENV], logPath: `${name}-${Date.now()}.log`, ...extra };
  }

  async function removePod(pod: Pod, functionId?: string): Promise<void> {
    if (functionId) {
      await cri.runtime("StopContainer", { containerId: functionId, timeout: 30 });
      await waitContainerExited(cri, functionId, 60_000);
    }
    await cri.runtime("StopPodSandbox", { podSandboxId: pod.podSandboxId });
    await cri.runtime("RemovePodSandbox", { podSandboxId: pod.podSandboxId });
  }

  describe("pods with runtime handler vhive", () => {
    it("run the function as a microVM at the pod IP and on localhost for a sidecar: booted, then restored recording, then prefetching", async () => {
      const starts: string[] = [];
      const logs: string[] = [];
      for (const round of [1, 2, 3]) {
        const pod = await runPod(`fn-${round}`);
        const config = functionContainer();
        const fn = await startContainer(pod, config);
        starts.push((await startOf(fn)).start);
        expect(await callPod(pod.ip, `pod ${round}`)).toBe(`Hello, pod ${round}!`);
        const { status } = await cri.runtime("ContainerStatus", { containerId: fn });
        expect(status.state).toBe("CONTAINER_RUNNING");
        const sidecarLog = `sidecar-${round}.log`;
        const sidecar = await startContainer(pod, { metadata: { name: "sidecar" }, image: { image: FUNCTION_IMAGE }, command: SIDECAR_CALL, logPath: sidecarLog });
        const exited = await waitContainerExited(cri, sidecar, 120_000);
        expect(exited.exitCode, (await readCriLog(join(work.path, sidecarLog))).stderr).toBe(0);
        expect((await readCriLog(join(work.path, sidecarLog))).stdout).toBe("Hello, sidecar!\n");
        const { containers } = await cri.runtime("ListContainers", { filter: { podSandboxId: pod.podSandboxId } });
        expect(containers.map((c: CriMessage) => [c.metadata.name, c.state]).sort()).toEqual([
          ["sidecar", "CONTAINER_EXITED"],
          ["user-container", "CONTAINER_RUNNING"],
        ]);
        await removePod(pod, fn);
        logs.push((await readCriLog(join(work.path, config.logPath as string))).stderr);
      }
      expect(starts, logs.join("\n")).toEqual(["boot", "record", "prefetch"]);
    });

    it("eight pods started at once all answer at their pod IPs, and are removed", async () => {
      const pods = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const pod = await runPod(`at-once-${i}`);
          const fn = await startContainer(pod, functionContainer());
          return { pod, fn, reply: await callPod(pod.ip, `pod ${i}`) };
        }),
      );
      expect(pods.map((p) => p.reply)).toEqual(Array.from({ length: 8 }, (_, i) => `Hello, pod ${i}!`));
      expect(new Set(pods.map((p) => p.pod.ip)).size).toBe(8);
      const starts = await Promise.all(pods.map((p) => startOf(p.fn).then((s) => s.start)));
      expect(starts.every((start) => start === "prefetch" || start === "vanilla" || start === "record"), starts.join(",")).toBe(true);
      await Promise.all(pods.map((p) => removePod(p.pod, p.fn)));
      expect((await cri.runtime("ListPodSandbox", {})).items).toEqual([]);
    });

    it("refuses bad pods with a clear CRI error, and the pod's other containers and the node's snapshots are unaffected", async () => {
      const snapshotsBefore = (await new SnapshotStore(new StatePaths(stateDir())).list()).snapshots.map((s) => s.meta.id);
      const failing = async (pod: Pod, config: CriMessage) => {
        const { containerId } = await cri.runtime("CreateContainer", { podSandboxId: pod.podSandboxId, sandboxConfig: pod.config, config });
        containerIds.push(containerId);
        return cri.runtime("StartContainer", { containerId }, { timeoutMs: START_TIMEOUT_MS }).then(
          () => "started",
          (error: Error) => error.message,
        );
      };
      const noPort = await runPod("no-port");
      expect(await failing(noPort, { metadata: { name: "user-container" }, image: { image: "ghcr.io/containerd/busybox:1.28" }, command: ["sleep", "60"], logPath: "no-port.log" })).toContain("does not say which TCP port its function listens on");
      // The pod itself is fine: a sidecar still runs under runc.
      const sidecar = await startContainer(noPort, { metadata: { name: "sleeper" }, image: { image: "ghcr.io/containerd/busybox:1.28" }, command: ["true"], logPath: "sleeper.log" });
      expect((await waitContainerExited(cri, sidecar)).exitCode).toBe(0);
      await removePod(noPort);

      const misnamed = await runPod("misnamed", { "dev.vhive.function-container": "no-such-container" });
      expect(await failing(misnamed, functionContainer())).toContain("dev.vhive.function-container=no-such-container names no container the pod has started");
      await removePod(misnamed);

      const small = await runPod("too-small");
      expect(await failing(small, functionContainer("user-container", { linux: { resources: { memoryLimitInBytes: 64 * 1024 * 1024 } } }))).toContain("memory limit (64 MiB) is less than its function needs");
      await removePod(small);

      expect((await new SnapshotStore(new StatePaths(stateDir())).list()).snapshots.map((s) => s.meta.id)).toEqual(snapshotsBefore);
      const after = await runPod("after-bad");
      const fn = await startContainer(after, functionContainer());
      expect(await callPod(after.ip, "after")).toBe("Hello, after!");
      expect((await startOf(fn)).start).toBe("prefetch");
      await removePod(after, fn);
    });

    it("the Pod of deploy/kubernetes/pod.yaml, as kubelet sends it, answers at its pod IP and to its caller, and bench load --url drives it", async () => {
      const manifest = parseYaml(await readFile(packagePath("deploy", "kubernetes", "pod.yaml"), "utf8"));
      const runtimeClass = parseYaml(await readFile(packagePath("deploy", "kubernetes", "runtimeclass.yaml"), "utf8"));
      expect(manifest.spec.runtimeClassName).toBe(runtimeClass.metadata.name);
      // What kubelet makes of the manifest: the pod's annotations on its sandbox, the RuntimeClass's
      // handler, each container in order with its command and limits (cpu "1": 100000 of 100000 us).
      const config = podSandboxConfig("manifest", { logDirectory: work.path, annotations: manifest.metadata.annotations });
      const { podSandboxId } = await cri.runtime("RunPodSandbox", { config, runtimeHandler: runtimeClass.handler });
      podIds.push(podSandboxId);
      const pod: Pod = { podSandboxId, config, ip: (await cri.runtime("PodSandboxStatus", { podSandboxId })).status.network.ip };
      expect(manifest.spec.containers[0].resources.limits).toEqual({ memory: "256Mi", cpu: "1" });
      const ids: string[] = [];
      for (const container of manifest.spec.containers) {
        const limits = container.resources?.limits;
        ids.push(
          await startContainer(pod, {
            metadata: { name: container.name },
            image: { image: FUNCTION_IMAGE }, // the manifest's vhive.local/helloworld:latest, imported here under this run's name
            command: container.command ?? [],
            envs: [RUN_ENV],
            logPath: `manifest-${container.name}.log`,
            linux: limits ? { resources: { memoryLimitInBytes: 256 * 1024 * 1024, cpuPeriod: 100_000, cpuQuota: 100_000 } } : {},
          }),
        );
      }
      expect(await callPod(pod.ip, "manifest")).toBe("Hello, manifest!");
      const callerLog = join(work.path, `manifest-${manifest.spec.containers[1].name}.log`);
      const deadline = Date.now() + 120_000;
      while (!(await readCriLog(callerLog).catch(() => ({ stdout: "" }))).stdout.includes("Hello, caller!\n")) {
        if (Date.now() > deadline) throw new Error(`the caller sidecar never logged a reply: ${JSON.stringify(await readCriLog(callerLog).catch(() => undefined))}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }

      const out = join(work.path, "load");
      const load = await runCli(["bench", "load", "--url", `${pod.ip}:50051`, "--rps", "4", "--arrival", "uniform", "--duration", "3s", "--data", "load", "--out", out]);
      expect(load.code, load.stderr).toBe(0);
      const report = JSON.parse(await readFile(join(out, "load.json"), "utf8")) as LoadReport;
      expect(report).toMatchObject({ url: `grpc://${pod.ip}:50051`, deployment: null, method: "helloworld.Greeter/SayHello" });
      expect(report.rows.map((row) => [row.status, row.start])).toEqual(Array(12).fill(["ok", null]));
      expect(load.stdout).toContain("start kinds unknown");
      await removePod(pod, ids[0]);
    });
  });
});
