/**
 * The node-level environment of the CRI tests, proved with the ordinary `runc` handler: a
 * private containerd with its CRI plugin and CNI bridge, images built offline, and a CRI client
 * doing what kubelet does for a pod of two containers, the first serving HTTP, the second calling
 * it on localhost; the first answers at the pod IP from the host too. containerd killed with
 * SIGKILL comes back (its supervisor restarts it) and finds the pod still running. Stopping
 * leaves nothing: no process, mount, link, route or file. Boots no VM.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir, type TempDir } from "../../src/shared/tmp.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { startPrivateContainerd, type PrivateContainerd } from "./containerd-env.js";
import { connectCri, podSandboxConfig, readCriLog, waitContainerExited, type CriClient } from "../../src/containerd/cri/index.js";
import { expectNothingLeft } from "./harness.js";

const BUSYBOX = "ghcr.io/containerd/busybox:1.28";
const PORT = 8080;
const GREETING = "hello from the pod";

const cleanups = new Cleanups();
let env: PrivateContainerd;
let cri: CriClient;
let logs: TempDir;
/** Every pod and container made, for the leftover check. */
const podIds: string[] = [];
const containerIds: string[] = [];

beforeAll(async () => {
  env = await startPrivateContainerd();
  cleanups.push(() => env.stop());
  await env.importImages(["pause", "busybox"]);
  cri = connectCri(env.socket);
  cleanups.push(() => cri.close());
  logs = await makeTempDir("cri-logs");
  cleanups.push(() => logs.remove());
});
afterAll(() => cleanups.run());

/** GET http://address:PORT/ from the host, retried while the server starts. */
async function getFromHost(address: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`http://${address}:${PORT}/`, { signal: AbortSignal.timeout(2000) });
      return await response.text();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`nothing answered at ${address}:${PORT} within ${timeoutMs} ms: ${String(error)}`);
      await sleep(100);
    }
  }
}

/** Host-side ends of the veth pairs on the instance's bridge. */
function vethsOnBridge(): string[] {
  const out = execFileSync("ip", ["-o", "link", "show", "master", env.bridge], { encoding: "utf8" });
  return out
    .split("\n")
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

function inSubnet(ip: string, subnet: string): boolean {
  return ip.startsWith(subnet.replace(/\.0\/24$/, "."));
}

describe("containerd's CRI plugin with the runc handler", () => {
  it("runs a pod whose containers talk over localhost and answer at the pod IP, through a containerd restart", async () => {
    const version = await cri.runtime("Version", {});
    expect(version.runtimeName).toBe("containerd");
    const { status: runtimeStatus } = await cri.runtime("Status", {});
    const ready = Object.fromEntries(runtimeStatus.conditions.map((c: { type: string; status: boolean }) => [c.type, c.status]));
    expect(ready).toEqual({ RuntimeReady: true, NetworkReady: true });
    const image = await cri.image("ImageStatus", { image: { image: BUSYBOX } });
    expect(image.image?.repoTags).toContain(BUSYBOX);

    const config = podSandboxConfig("web", { logDirectory: logs.path });
    const { podSandboxId } = await cri.runtime("RunPodSandbox", { config, runtimeHandler: "runc" });
    podIds.push(podSandboxId);
    const { status: pod } = await cri.runtime("PodSandboxStatus", { podSandboxId });
    expect(pod.state).toBe("SANDBOX_READY");
    expect(pod.runtimeHandler).toBe("runc");
    const podIp: string = pod.network.ip;
    expect(inSubnet(podIp, env.subnet)).toBe(true);
    expect(vethsOnBridge()).toHaveLength(1);

    const server = await cri.runtime("CreateContainer", {
      podSandboxId,
      sandboxConfig: config,
      config: {
        metadata: { name: "server" },
        image: { image: BUSYBOX },
        command: ["sh", "-c", `mkdir -p /www && echo "$GREETING" > /www/index.html && exec httpd -f -p ${PORT} -h /www`],
        envs: [{ key: "GREETING", value: GREETING }],
        logPath: "server.log",
      },
    });
    containerIds.push(server.containerId);
    await cri.runtime("StartContainer", { containerId: server.containerId });
    expect(await getFromHost(podIp)).toBe(`${GREETING}\n`);

    // The sidecar shares the pod's network namespace: localhost is the server.
    const client = await cri.runtime("CreateContainer", {
      podSandboxId,
      sandboxConfig: config,
      config: {
        metadata: { name: "client" },
        image: { image: BUSYBOX },
        command: ["sh", "-c", `wget -q -O - http://localhost:${PORT}/`],
        logPath: "client.log",
      },
    });
    containerIds.push(client.containerId);
    await cri.runtime("StartContainer", { containerId: client.containerId });
    const clientStatus = await waitContainerExited(cri, client.containerId);
    expect(clientStatus.exitCode).toBe(0);
    expect((await readCriLog(join(logs.path, "client.log"))).stdout).toBe(`${GREETING}\n`);

    const { status: serverStatus } = await cri.runtime("ContainerStatus", { containerId: server.containerId });
    expect(serverStatus.state).toBe("CONTAINER_RUNNING");
    expect(serverStatus.metadata.name).toBe("server");
    expect(serverStatus.image.image).toBe(BUSYBOX);
    const { containers } = await cri.runtime("ListContainers", { filter: { podSandboxId } });
    expect(containers.map((c: { metadata: { name: string }; state: string }) => [c.metadata.name, c.state]).sort()).toEqual([
      ["client", "CONTAINER_EXITED"],
      ["server", "CONTAINER_RUNNING"],
    ]);

    // containerd dies; its supervisor restarts it, and the new one finds the pod from its shims.
    const before = env.pid;
    await env.restartContainerd("SIGKILL");
    expect(env.pid).not.toBe(before);
    const { status: podAfter } = await cri.runtime("PodSandboxStatus", { podSandboxId });
    expect(podAfter.state).toBe("SANDBOX_READY");
    expect(await getFromHost(podIp)).toBe(`${GREETING}\n`);

    await cri.runtime("StopContainer", { containerId: server.containerId, timeout: 5 });
    const stopped = await waitContainerExited(cri, server.containerId, 10_000);
    expect(stopped.exitCode).toBe(143); // SIGTERM ended it, within the 5 s before a SIGKILL
    await cri.runtime("StopPodSandbox", { podSandboxId });
    const { status: podStopped } = await cri.runtime("PodSandboxStatus", { podSandboxId });
    expect(podStopped.state).toBe("SANDBOX_NOTREADY");
    expect(vethsOnBridge()).toEqual([]);
    await cri.runtime("RemovePodSandbox", { podSandboxId });
    expect((await cri.runtime("ListPodSandbox", {})).items).toEqual([]);
    expect((await cri.runtime("ListContainers", {})).containers).toEqual([]);
  });

  it("leaves nothing behind when stopped, even with a pod still running", async () => {
    const config = podSandboxConfig("left-running", { logDirectory: logs.path });
    const { podSandboxId } = await cri.runtime("RunPodSandbox", { config, runtimeHandler: "runc" });
    const sleeper = await cri.runtime("CreateContainer", {
      podSandboxId,
      sandboxConfig: config,
      config: { metadata: { name: "sleeper" }, image: { image: BUSYBOX }, command: ["sleep", "3600"], logPath: "sleeper.log" },
    });
    await cri.runtime("StartContainer", { containerId: sleeper.containerId });
    cri.close();
    await env.stop();
    expect(await env.leftovers({ pods: [...podIds, podSandboxId], containers: [...containerIds, sleeper.containerId] })).toEqual([]);
    await expectNothingLeft();
  });
});
