/**
 * A cluster of scripts/k8s-cluster.sh, as its cluster.json describes it: the kubeconfig and the
 * kit's programs, and each node's containerd and vhive state, so that a pod's function
 * container can be found on its node (its start record, what the shim left).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { VhiveError } from "../../shared/errors.js";
import { readStartRecord, taskBundle, type StartRecord } from "../shim/start-record.js";
import { Kubectl, type PodView } from "./kubectl.js";

/** CRI's containerd namespace. */
export const CRI_NAMESPACE = "k8s.io";

const ClusterNode = z.object({
  name: z.string(),
  ip: z.string(),
  netns: z.string(),
  containerdSocket: z.string(),
  containerdDir: z.string(),
  containerdState: z.string(),
  vhiveState: z.string(),
});
const ClusterInfo = z.object({
  dir: z.string(),
  kubeconfig: z.string(),
  kubectl: z.string(),
  ctr: z.string(),
  crictl: z.string(),
  apiServer: z.string(),
  serviceCidr: z.string(),
  nodes: z.array(ClusterNode).min(1),
});
export type ClusterNode = z.infer<typeof ClusterNode>;
export type ClusterInfo = z.infer<typeof ClusterInfo>;

export class Cluster {
  readonly kubectl: Kubectl;

  private constructor(readonly info: ClusterInfo) {
    this.kubectl = new Kubectl(info.kubectl, info.kubeconfig);
  }

  static async open(dir: string): Promise<Cluster> {
    const path = join(dir, "cluster.json");
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text === undefined) throw new VhiveError("ERR_VALIDATION", `no cluster runs in ${dir} (it has no cluster.json)`, { remedy: `bash scripts/k8s-cluster.sh --dir ${dir} up` });
    return new Cluster(ClusterInfo.parse(JSON.parse(text)));
  }

  node(name: string): ClusterNode {
    const node = this.info.nodes.find((candidate) => candidate.name === name);
    if (!node) throw new VhiveError("ERR_VALIDATION", `node ${name} is not one of the cluster's (${this.info.nodes.map((n) => n.name).join(", ")})`);
    return node;
  }

  /** How the shim started a pod's function container, read from its bundle on the pod's node. */
  async startRecord(pod: PodView, container: string): Promise<StartRecord> {
    const id = pod.containerIds[container];
    if (!pod.node || !id) throw new VhiveError("ERR_VALIDATION", `pod ${pod.name} has no container ${container} on a node yet`);
    return readStartRecord(taskBundle(this.node(pod.node).containerdState, CRI_NAMESPACE, id));
  }
}
