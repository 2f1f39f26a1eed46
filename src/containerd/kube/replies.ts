/**
 * Calling a cluster's function pods from this host: a pod's first reply at its pod IP, and each
 * pod of a rollout timed from a moment the caller chose (the kubectl apply or scale) to its first
 * reply, as a client would see it. The pod IPs and ClusterIPs of scripts/k8s-cluster.sh are
 * routed from the host.
 */
import { addressClient, parseFunctionAddress } from "../../invoke/index.js";
import type { Kubectl, PodView } from "./kubectl.js";

export interface PodReply {
  pod: PodView;
  /** From `since` to the reply, in ms. */
  ms: number;
  reply: string;
}

/** The reply of the function at host:port, waiting (retrying every 50 ms) until it answers. */
export async function callFunction(host: string, port: number, data: string, timeoutMs: number): Promise<string> {
  const client = addressClient(parseFunctionAddress(`${host}:${port}`), { invokeTimeoutMs: timeoutMs });
  try {
    await client.waitReady({ timeoutMs, retryMs: 50 });
    return (await client.invoke(data)).text;
  } finally {
    client.close();
  }
}

/**
 * Until `count` pods of `selector` (not being deleted, and not in `exclude`) have replied: each
 * is called as soon as it has a pod IP; `since` is a performance.now() value.
 */
export async function firstReplies(kubectl: Kubectl, selector: string, options: { count: number; port: number; since: number; timeoutMs: number; exclude?: ReadonlySet<string> }): Promise<PodReply[]> {
  const calling = new Map<string, Promise<PodReply>>();
  const deadline = Date.now() + options.timeoutMs;
  while (calling.size < options.count) {
    for (const pod of await kubectl.pods(selector)) {
      if (pod.deleting || !pod.ip || calling.has(pod.name) || options.exclude?.has(pod.name)) continue;
      const ip = pod.ip;
      calling.set(
        pod.name,
        callFunction(ip, options.port, pod.name, Math.max(1000, deadline - Date.now())).then((reply) => ({ pod, ms: Math.round(performance.now() - options.since), reply })),
      );
    }
    if (calling.size >= options.count) break;
    if (Date.now() > deadline) throw new Error(`only ${calling.size} of ${options.count} pods of ${selector} got a pod IP within ${options.timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const replies = await Promise.all(calling.values());
  // The pod as it is now (its containers' ids are set once it runs).
  const now = new Map((await kubectl.pods(selector)).map((pod) => [pod.name, pod]));
  return replies.map((reply) => ({ ...reply, pod: now.get(reply.pod.name) ?? reply.pod }));
}
