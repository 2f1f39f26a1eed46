#!/usr/bin/env node
/**
 * The Kubernetes part of scripts/k8s-try.sh (which brings up the cluster of k8s-cluster.sh and
 * imports helloworld into each node's containerd): label the nodes for vhive, apply
 * deploy/kubernetes/runtimeclass.yaml and deployment.yaml with kubectl, call every pod at its pod
 * IP and the Service at its ClusterIP, scale to 0 (each node's pods save the snapshot as they
 * stop), scale to 4 (pods on both nodes restore: one per node records its working set, saved
 * as it stops, the others restore plainly meanwhile), to 0 again and to 2 (the working sets are
 * there: both prefetch), read `kubectl logs` of a function container, delete it all. Prints
 * progress on stderr and, as its last line, one JSON object:
 *
 *   {"nodes":2,"pods":[{"name","node","start","ms"},...],"podReplies":[...],"serviceReplies":[...],"logs":true}
 *
 * ms: from the kubectl apply (or scale) to the pod's first reply at its pod IP.
 *
 *   node dist/containerd/kube/try.js --cluster DIR [--deploy DIR]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { describeError } from "../../cli/format.js";
import { packagePath } from "../../shared/package-root.js";
import { Cluster } from "./cluster.js";
import { callFunction, firstReplies, type PodReply } from "./replies.js";

const SELECTOR = "app=helloworld";
const CONTAINER = "helloworld";
const PORT = 50051;
const TIMEOUT_MS = 600_000;

const say = (line: string) => process.stderr.write(`==> ${line}\n`);

interface PodResult {
  name: string;
  node: string;
  start: string;
  ms: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { cluster: { type: "string" }, deploy: { type: "string" } }, strict: true });
  if (!values.cluster) throw new Error("k8s-try: --cluster DIR is missing (scripts/k8s-try.sh passes it)");
  const cluster = await Cluster.open(values.cluster);
  const { kubectl } = cluster;
  const deploy = values.deploy ?? packagePath("deploy", "kubernetes");
  const manifests = ["-f", join(deploy, "runtimeclass.yaml"), "-f", join(deploy, "deployment.yaml")];

  say(`labelling ${cluster.info.nodes.map((node) => node.name).join(" and ")} dev.vhive/runtime=true`);
  await kubectl.run(["label", "node", ...cluster.info.nodes.map((node) => node.name), "dev.vhive/runtime=true", "--overwrite"]);
  const pods: PodResult[] = [];
  const record = async (replies: PodReply[]) => {
    for (const { pod, ms } of replies) {
      const { start } = await cluster.startRecord(pod, CONTAINER);
      pods.push({ name: pod.name, node: pod.node!, start, ms });
      say(`${pod.name} on ${pod.node} (${pod.ip}): started by ${start}, first reply ${ms} ms after kubectl`);
    }
  };

  say("kubectl apply -f runtimeclass.yaml -f deployment.yaml (3 replicas)");
  let since = performance.now();
  await kubectl.run(["apply", ...manifests]);
  const first = await firstReplies(kubectl, SELECTOR, { count: 3, port: PORT, since, timeoutMs: TIMEOUT_MS });
  await record(first);
  const podReplies: string[] = [];
  for (const { pod } of first) podReplies.push(await callFunction(pod.ip!, PORT, `pod ${pod.name}`, 60_000));
  const service = await kubectl.json<{ spec: { clusterIP: string } }>(["get", "service", "helloworld"]);
  const serviceReplies: string[] = [];
  for (let i = 1; i <= 3; i++) serviceReplies.push(await callFunction(service.spec.clusterIP, PORT, `service ${i}`, 60_000));
  say(`pods answered ${JSON.stringify(podReplies)}; the Service at ${service.spec.clusterIP}:${PORT} answered ${JSON.stringify(serviceReplies)}`);

  say("kubectl scale --replicas=0: each node's pods save the image's snapshot as they stop");
  await kubectl.run(["scale", "deployment/helloworld", "--replicas=0"]);
  await kubectl.waitPods(SELECTOR, (now) => now.length === 0, "gone", TIMEOUT_MS);

  say("kubectl scale --replicas=4: pods restore on both nodes");
  since = performance.now();
  await kubectl.run(["scale", "deployment/helloworld", "--replicas=4"]);
  const second = await firstReplies(kubectl, SELECTOR, { count: 4, port: PORT, since, timeoutMs: TIMEOUT_MS });
  await record(second);
  for (const { pod } of second) podReplies.push(await callFunction(pod.ip!, PORT, `pod ${pod.name}`, 60_000));

  say("kubectl scale --replicas=0, then 2: the recording pods saved their working sets as they stopped");
  await kubectl.run(["scale", "deployment/helloworld", "--replicas=0"]);
  await kubectl.waitPods(SELECTOR, (now) => now.length === 0, "gone", TIMEOUT_MS);
  since = performance.now();
  await kubectl.run(["scale", "deployment/helloworld", "--replicas=2"]);
  const third = await firstReplies(kubectl, SELECTOR, { count: 2, port: PORT, since, timeoutMs: TIMEOUT_MS });
  await record(third);
  for (const { pod } of third) podReplies.push(await callFunction(pod.ip!, PORT, `pod ${pod.name}`, 60_000));

  const logged = await kubectl.run(["logs", third[0]!.pod.name, "-c", CONTAINER]);
  const logs = logged.split("\n").some((line) => line.startsWith("vhive: started by"));
  say(`kubectl logs ${third[0]!.pod.name}: ${logs ? "has vhive's start line" : "lacks vhive's start line"}`);

  say("kubectl delete -f deployment.yaml -f runtimeclass.yaml");
  await kubectl.run(["delete", "--wait=true", ...manifests], { timeoutMs: TIMEOUT_MS });
  await kubectl.waitPods(SELECTOR, (now) => now.length === 0, "gone", TIMEOUT_MS);
  process.stdout.write(JSON.stringify({ nodes: cluster.info.nodes.length, pods, podReplies, serviceReplies, logs }) + "\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`k8s-try: ${describeError(error)}\n`);
  process.exitCode = 1;
});
