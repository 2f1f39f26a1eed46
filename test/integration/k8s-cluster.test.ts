/**
 * vhive pods on a real Kubernetes cluster: scripts/k8s-cluster.sh's two nodes (kubelet,
 * kube-proxy and containerd 2 each, in network namespaces of their own) and control plane (etcd,
 * API server, controller-manager, scheduler), all built from their Go modules by the kit. The
 * k8s-try.sh sequence (the deploy manifests applied with kubectl, pods on both nodes answering at
 * their pod IPs and through the Service's ClusterIP, scaled to 0 and back to restores, the
 * function's log), then: a tcpSocket readiness probe keeps a pod out of the Service's endpoints
 * until it passes; pods whose function cannot start say why in their events and leave the
 * node's snapshots alone; containerd and kubelet restarted under running pods; and deleting
 * every pod leaves no QEMU, pager, shim or namespace on either node; `down` leaves nothing (no
 * folder, bridge, namespace, mount, cgroup, kubelet host path or CNI result).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "../../src/containerd/kube/cluster.js";
import { callFunction, firstReplies } from "../../src/containerd/kube/replies.js";
import { packagePath } from "../../src/shared/package-root.js";
import { makeTempDir, type TempDir } from "../../src/shared/tmp.js";
import { expectNothingLeft, stateDir } from "./harness.js";

const run = promisify(execFile);
const CLUSTER_SCRIPT = packagePath("scripts", "k8s-cluster.sh");
const PORT = 50051;
const LONG = 900_000;

let work: TempDir;
let dir: string;
let cluster: Cluster;
/** Host paths that kubelet and libcni use whatever their configuration: as they were before. */
const HOST_PATHS = ["/var/lib/kubelet", "/var/log/containers"];
let hostPathsBefore: boolean[];
let cniResultsBefore: string[];
const cniResults = () => readdir("/var/lib/cni/results").catch(() => [] as string[]);

async function clusterScript(...args: string[]): Promise<string> {
  const { stdout } = await run("bash", [CLUSTER_SCRIPT, "--dir", dir, ...args], { maxBuffer: 1 << 24, timeout: LONG });
  return stdout;
}

const kubectl = (...args: string[]) => cluster.kubectl.run(args, { timeoutMs: LONG });

async function apply(manifest: object): Promise<void> {
  const file = join(work.path, `manifest-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(manifest));
  await kubectl("apply", "-f", file);
}

/** A pod of helloworld on vhive (the image imported by k8s-try.sh, or here). */
function functionPod(name: string, extra: { container?: object; labels?: Record<string, string> } = {}): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: { test: "k8s", ...extra.labels } },
    spec: {
      runtimeClassName: "vhive",
      enableServiceLinks: false,
      containers: [{ name: "fn", image: "vhive.local/helloworld:latest", imagePullPolicy: "Never", ports: [{ containerPort: PORT }], resources: { limits: { memory: "256Mi", cpu: "1" } }, ...extra.container }],
    },
  };
}

/** The node's snapshots: what a bad pod must leave alone. */
async function snapshotsOf(vhiveState: string): Promise<string[]> {
  const root = join(vhiveState, "snapshots");
  const found: string[] = [];
  for (const fn of await readdir(root).catch(() => [] as string[])) for (const id of await readdir(join(root, fn))) found.push(`${fn}/${id}`);
  return found.sort();
}

/** Processes of the cluster's nodes that a pod leaves: QEMU, pagers, vhive shims. */
async function vmProcesses(): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ");
    if (!cmdline.includes(dir)) continue;
    if (/qemu-system|vhive-pager|dist\/shim\/main\.js/.test(cmdline)) found.push(`${entry}: ${cmdline.slice(0, 160)}`);
  }
  return found;
}

beforeAll(async () => {
  hostPathsBefore = HOST_PATHS.map((path) => existsSync(path));
  cniResultsBefore = await cniResults();
  work = await makeTempDir("k8s-cluster");
  dir = join(work.path, "cluster");
  await clusterScript("up");
  cluster = await Cluster.open(dir);
}, LONG);

afterAll(async () => {
  if (dir) await clusterScript("down");
  // down removes the folder, the bridge, the nodes' namespaces, their mounts and cgroups.
  expect(existsSync(dir)).toBe(false);
  const { stdout: links } = await run("ip", ["-o", "link", "show"]);
  expect(links.split("\n").filter((line) => /: vk8s\d/.test(line))).toEqual([]);
  const namespaces = await readdir("/run/netns").catch(() => [] as string[]);
  expect(namespaces.filter((name) => name.startsWith("vk8s"))).toEqual([]);
  const mounts = await readFile("/proc/self/mountinfo", "utf8");
  expect(mounts.split("\n").filter((line) => line.includes(dir))).toEqual([]);
  for (const hierarchy of await readdir("/sys/fs/cgroup")) {
    const left = (await readdir(`/sys/fs/cgroup/${hierarchy}`).catch(() => [] as string[])).filter((name) => /^vhive-k8s\d-node\d$/.test(name));
    expect(left, hierarchy).toEqual([]);
  }
  expect(HOST_PATHS.map((path) => existsSync(path))).toEqual(hostPathsBefore);
  expect((await cniResults()).filter((file) => !cniResultsBefore.includes(file))).toEqual([]);
  await work?.remove();
  await expectNothingLeft();
}, LONG);

describe("a two-node Kubernetes cluster running vhive pods", () => {
  it("runs k8s-try.sh: pods on both nodes answer at their pod IPs and through the Service, then restore after a scale to 0", async () => {
    // helloworld is built and exported in the tests' state folder.
    const { stdout } = await run("bash", [packagePath("scripts", "k8s-try.sh"), "--dir", dir], { maxBuffer: 1 << 24, timeout: LONG, cwd: packagePath(), env: { ...process.env, VHIVE_STATE: stateDir() } });
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
      nodes: number;
      pods: { name: string; node: string; start: string; ms: number }[];
      podReplies: string[];
      serviceReplies: string[];
      logs: boolean;
    };
    expect(result.nodes).toBe(2);
    expect(result.pods).toHaveLength(9);
    const [booted, restored, prefetched] = [result.pods.slice(0, 3), result.pods.slice(3, 7), result.pods.slice(7)];
    expect(booted.map((pod) => pod.start)).toEqual(["boot", "boot", "boot"]);
    // Each node had a pod, so each saved a snapshot as its pods stopped; the restores use it.
    expect(new Set(booted.map((pod) => pod.node)).size).toBe(2);
    expect(new Set(restored.map((pod) => pod.node)).size).toBe(2);
    for (const pod of restored) expect(["record", "vanilla"], pod.name).toContain(pod.start);
    // One pod per node recorded the working set; the pods after it prefetch it.
    expect(restored.filter((pod) => pod.start === "record").map((pod) => pod.node).sort()).toEqual(["vhive-node1", "vhive-node2"]);
    for (const pod of prefetched) expect(pod.start, `${pod.name} on ${pod.node}`).toBe("prefetch");
    for (const pod of result.pods) expect(pod.ms).toBeGreaterThan(0);
    expect(result.podReplies).toHaveLength(9);
    for (const reply of result.podReplies) expect(reply).toMatch(/^Hello, pod helloworld-/);
    expect(result.serviceReplies).toEqual(["Hello, service 1!", "Hello, service 2!", "Hello, service 3!"]);
    expect(result.logs).toBe(true);
  }, LONG);

  it("keeps a pod out of the Service's endpoints until its tcpSocket readiness probe passes", async () => {
    await kubectl("apply", "-f", packagePath("deploy", "kubernetes", "runtimeclass.yaml"));
    await apply({ apiVersion: "v1", kind: "Service", metadata: { name: "probed" }, spec: { selector: { probe: "yes" }, ports: [{ port: PORT, targetPort: PORT }] } });
    // One probe on the function's port, one on a port nothing listens on.
    await apply(functionPod("probe-good", { labels: { probe: "yes" }, container: { readinessProbe: { tcpSocket: { port: PORT }, periodSeconds: 1 } } }));
    await apply(functionPod("probe-bad", { labels: { probe: "yes" }, container: { readinessProbe: { tcpSocket: { port: PORT + 1 }, periodSeconds: 1 } } }));
    const pods = await cluster.kubectl.waitPods("probe=yes", (now) => now.length === 2 && now.every((pod) => pod.phase === "Running" && pod.ip), "running", LONG);
    const good = pods.find((pod) => pod.name === "probe-good")!;
    const bad = pods.find((pod) => pod.name === "probe-bad")!;
    await cluster.kubectl.waitPods("probe=yes", (now) => now.some((pod) => pod.name === "probe-good" && pod.ready), "ready", LONG);
    // The function of the pod that is not ready answers all the same: the probe holds it out.
    expect(await callFunction(bad.ip!, PORT, "bad", 60_000)).toBe("Hello, bad!");
    const slices = await cluster.kubectl.json<{ items: { endpoints?: { addresses: string[]; conditions: { ready?: boolean } }[] }[] }>(["get", "endpointslices", "-l", "kubernetes.io/service-name=probed"]);
    const endpoints = slices.items.flatMap((slice) => slice.endpoints ?? []);
    const readiness = Object.fromEntries(endpoints.map((endpoint) => [endpoint.addresses[0], endpoint.conditions.ready ?? false]));
    expect(readiness).toEqual({ [good.ip!]: true, [bad.ip!]: false });
    const service = await cluster.kubectl.json<{ spec: { clusterIP: string } }>(["get", "service", "probed"]);
    for (let i = 0; i < 3; i++) expect(await callFunction(service.spec.clusterIP, PORT, `probed ${i}`, 60_000)).toBe(`Hello, probed ${i}!`);
    await kubectl("delete", "pod", "probe-good", "probe-bad", "--wait=true");
    await kubectl("delete", "service", "probed");
  }, LONG);

  it("a pod whose function cannot start says why in its events, and the node's snapshots stay as they were", async () => {
    const before = await Promise.all(cluster.info.nodes.map((node) => snapshotsOf(node.vhiveState)));
    // No port: the pause image has no vhive function config and no PORT.
    await apply({ ...functionPod("no-port"), spec: { runtimeClassName: "vhive", containers: [{ name: "fn", image: "registry.k8s.io/pause:3.6", imagePullPolicy: "Never" }] } });
    // A memory limit below what the guest needs.
    await apply(functionPod("too-small", { container: { resources: { limits: { memory: "64Mi", cpu: "1" } } } }));
    const reasons = async (pod: string) => (await kubectl("get", "events", "--field-selector", `involvedObject.name=${pod}`, "-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}"));
    const waitEvent = async (pod: string, pattern: RegExp) => {
      const deadline = Date.now() + 300_000;
      for (;;) {
        const text = await reasons(pod);
        if (pattern.test(text)) return text;
        if (Date.now() > deadline) throw new Error(`pod ${pod} never reported ${pattern}: ${text}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    };
    expect(await waitEvent("no-port", /Failed: .*does not say which TCP port its function listens on/)).toMatch(/dev\.vhive\.port/);
    expect(await waitEvent("too-small", /Failed: .*memory limit \(64 MiB\) is less than its function needs/)).toBeTruthy();
    await kubectl("delete", "pod", "no-port", "too-small", "--wait=true");
    expect(await Promise.all(cluster.info.nodes.map((node) => snapshotsOf(node.vhiveState)))).toEqual(before);
  }, LONG);

  it("pods answer on while a node's containerd and the other's kubelet restart, and the nodes come back Ready", async () => {
    await apply({ ...functionPod("steady-1"), spec: { ...(functionPod("steady-1") as { spec: object }).spec, nodeName: "vhive-node1" } });
    await apply({ ...functionPod("steady-2"), spec: { ...(functionPod("steady-2") as { spec: object }).spec, nodeName: "vhive-node2" } });
    const replies = await firstReplies(cluster.kubectl, "test=k8s", { count: 2, port: PORT, since: performance.now(), timeoutMs: LONG });
    await clusterScript("restart", "vhive-node1", "containerd");
    await clusterScript("restart", "vhive-node2", "kubelet");
    for (const { pod } of replies) expect(await callFunction(pod.ip!, PORT, "after restarts", 60_000)).toBe("Hello, after restarts!");
    await cluster.kubectl.waitPods("test=k8s", (now) => now.length === 2 && now.every((pod) => pod.ready), "ready after the restarts", LONG);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const nodes = await cluster.kubectl.json<{ items: { status: { conditions: { type: string; status: string }[] } }[] }>(["get", "nodes"]);
      if (nodes.items.every((node) => node.status.conditions.some((c) => c.type === "Ready" && c.status === "True"))) break;
      if (Date.now() > deadline) throw new Error("the nodes did not come back Ready");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    for (const { pod } of replies) expect(await callFunction(pod.ip!, PORT, "still", 60_000)).toBe("Hello, still!");
  }, LONG);

  it("deleting every pod leaves no QEMU, pager, shim or namespace on either node", async () => {
    await kubectl("delete", "pods", "--all", "--wait=true");
    await cluster.kubectl.waitPods("test=k8s", (now) => now.length === 0, "gone", LONG);
    const deadline = Date.now() + 60_000;
    while ((await vmProcesses()).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await vmProcesses()).toEqual([]);
    for (const node of cluster.info.nodes) {
      // The node's own eth0 is a veth too (its end of the pair to the host); the pods' are the rest.
      const { stdout } = await run("nsenter", [`--net=${node.netns}`, "--", "ip", "-o", "link", "show", "type", "veth"]);
      expect(stdout.split("\n").filter((line) => line.trim() && !/^\d+: eth0@/.test(line)), `pod interfaces left on ${node.name}`).toEqual([]);
    }
    for (const node of cluster.info.nodes) {
      // CRI's pod network namespaces (netns_mounts_under_state_dir).
      expect(await readdir(join(node.containerdState, "netns")).catch(() => [] as string[]), node.name).toEqual([]);
    }
    expect((await readdir("/run/netns").catch(() => [] as string[])).filter((name) => name.startsWith("vhive-"))).toEqual([]);
  }, LONG);
});
