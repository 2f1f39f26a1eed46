/**
 * kubectl (the kit's, scripts/lib/k8s-kit.sh) against a cluster of scripts/k8s-cluster.sh: one
 * call a process, answers parsed as JSON, and a watch of pods that reports each change as it
 * happens (a list, then the API's watch from the list's resourceVersion, so that no change
 * between the two is missed), so that a benchmark sees when a pod was created, scheduled and
 * ready on this host's clock, without polling.
 */
import { execFile } from "node:child_process";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { VhiveError } from "../../shared/errors.js";
import { ChildHandle } from "../../shared/child.js";

const run = promisify(execFile);

/** What vhive reads of a pod. */
export interface PodView {
  name: string;
  uid: string;
  node: string | undefined;
  ip: string | undefined;
  phase: string;
  ready: boolean;
  deleting: boolean;
  /** containerd's container ids by container name (containerd://<id> in the pod's status). */
  containerIds: Record<string, string>;
}

interface PodObject {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; containerID?: string }[];
  };
}

export function podView(pod: PodObject): PodView {
  const containerIds: Record<string, string> = {};
  for (const status of pod.status?.containerStatuses ?? []) {
    if (status.containerID) containerIds[status.name] = status.containerID.replace(/^[a-z]+:\/\//, "");
  }
  return {
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    node: pod.spec.nodeName || undefined,
    ip: pod.status?.podIP || undefined,
    phase: pod.status?.phase ?? "Pending",
    ready: pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") ?? false,
    deleting: pod.metadata.deletionTimestamp !== undefined,
    containerIds,
  };
}

export class Kubectl {
  constructor(
    readonly binary: string,
    readonly kubeconfig: string,
  ) {}

  async run(args: readonly string[], options: { timeoutMs?: number } = {}): Promise<string> {
    try {
      const { stdout } = await run(this.binary, ["--kubeconfig", this.kubeconfig, ...args], { maxBuffer: 64 << 20, timeout: options.timeoutMs ?? 120_000 });
      return stdout;
    } catch (error) {
      const failed = error as { stderr?: string; message: string };
      throw new VhiveError("ERR_VALIDATION", `kubectl ${args.join(" ")} failed: ${(failed.stderr || failed.message).trim()}`, { remedy: "see scripts/k8s-cluster.sh status" });
    }
  }

  async json<T>(args: readonly string[]): Promise<T> {
    return JSON.parse(await this.run([...args, "-o", "json"])) as T;
  }

  async pods(selector: string): Promise<PodView[]> {
    const list = await this.json<{ items: PodObject[] }>(["get", "pods", "-l", selector]);
    return list.items.map(podView);
  }

  /** Poll until `done` holds for the pods of `selector` (kubectl wait cannot wait for a count). */
  async waitPods(selector: string, done: (pods: PodView[]) => boolean, what: string, timeoutMs: number): Promise<PodView[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pods = await this.pods(selector);
      if (done(pods)) return pods;
      if (Date.now() > deadline) {
        throw new VhiveError("ERR_READY_TIMEOUT", `pods ${selector}: not ${what} within ${timeoutMs / 1000} s (${pods.map((pod) => `${pod.name} ${pod.phase}${pod.ready ? " ready" : ""}`).join(", ") || "none"})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /**
   * Watch the pods of `selector` in `namespace`: `onChange` gets each pod as the list has it,
   * then as it changes, with when it was seen.
   */
  async watchPods(selector: string, onChange: (pod: PodView, seenAt: number, type: string) => void, namespace = "default"): Promise<PodWatch> {
    const list = await this.json<{ metadata: { resourceVersion: string }; items: PodObject[] }>(["get", "pods", "-n", namespace, "-l", selector]);
    for (const item of list.items) onChange(podView(item), performance.now(), "LISTED");
    const query = new URLSearchParams({ watch: "1", resourceVersion: list.metadata.resourceVersion, labelSelector: selector });
    return new PodWatch(this, `/api/v1/namespaces/${namespace}/pods?${query}`, onChange);
  }
}

/** A running watch of the API (`kubectl get --raw`); stop() ends it. */
export class PodWatch implements AsyncDisposable {
  readonly #child: ChildHandle;

  constructor(kubectl: Kubectl, path: string, onChange: (pod: PodView, seenAt: number, type: string) => void) {
    this.#child = new ChildHandle("kubectl-watch", kubectl.binary, ["--kubeconfig", kubectl.kubeconfig, "get", "--raw", path], { stdio: ["ignore", "pipe", "pipe"] });
    // The API streams each event as one line of JSON (one split over lines is put together).
    let pending = "";
    createInterface({ input: this.#child.process.stdout! }).on("line", (line) => {
      pending += line + "\n";
      let event: { type: string; object: PodObject };
      try {
        event = JSON.parse(pending) as { type: string; object: PodObject };
      } catch {
        return;
      }
      pending = "";
      if (event.type === "ERROR" || event.type === "BOOKMARK") return;
      onChange(podView(event.object), performance.now(), event.type);
    });
  }

  async stop(): Promise<void> {
    await this.#child.stop(5000);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
