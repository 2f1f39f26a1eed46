/**
 * Pods of one function through CRI, as kubelet makes them, for scripts/cri-try.sh and the pod
 * benchmark: a sandbox with a runtime handler, the function container first (with handler
 * `vhive`, the microVM; see src/containerd/shim/pod.ts), sidecars after it. A PodSet owns every
 * pod it made: remove() takes one down as kubelet does (the function stopped gracefully, so the
 * shim saves what it should: the image's snapshot, a recorded working set), and dispose removes
 * whatever is left at once, on error and on Ctrl-C too.
 */
import type { CriClient, CriMessage } from "./client.js";
import { podSandboxConfig, waitContainerExited } from "./config.js";

/** How long a function container may take to stop gracefully (a snapshot being saved under TCG). */
const STOP_TIMEOUT_S = 120;

export interface Pod {
  name: string;
  podSandboxId: string;
  config: CriMessage;
  /** The pod's IP on the CNI network. */
  ip: string;
  /** The function container (the pod's first), once started. */
  functionId?: string;
}

export interface PodSetOptions {
  /** Where the pods' container logs go. */
  logDirectory: string;
  /** Called with a problem met while taking pods down at dispose (it goes on with the others). */
  onCleanupError?: (pod: Pod, error: unknown) => void;
}

export class PodSet implements AsyncDisposable {
  readonly #cri: CriClient;
  readonly #options: PodSetOptions;
  readonly #pods = new Map<string, Pod>();

  constructor(cri: CriClient, options: PodSetOptions) {
    this.#cri = cri;
    this.#options = options;
  }

  /** RunPodSandbox with the handler, until the sandbox is ready and has its IP. */
  async runPod(name: string, runtimeHandler: string, options: { annotations?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Pod> {
    const config = podSandboxConfig(name, { logDirectory: this.#options.logDirectory, annotations: options.annotations });
    const { podSandboxId } = await this.#cri.runtime("RunPodSandbox", { config, runtimeHandler }, { signal: options.signal, timeoutMs: 120_000 });
    const pod: Pod = { name, podSandboxId, config, ip: "" };
    this.#pods.set(podSandboxId, pod);
    const { status } = await this.#cri.runtime("PodSandboxStatus", { podSandboxId }, { signal: options.signal });
    pod.ip = status.network?.ip ?? "";
    return pod;
  }

  /** CreateContainer and StartContainer (a vhive function's Start returns once the function answers). */
  async startContainer(pod: Pod, config: CriMessage, signal?: AbortSignal): Promise<string> {
    const { containerId } = await this.#cri.runtime("CreateContainer", { podSandboxId: pod.podSandboxId, sandboxConfig: pod.config, config }, { signal, timeoutMs: 300_000 });
    await this.#cri.runtime("StartContainer", { containerId }, { signal, timeoutMs: 300_000 });
    pod.functionId ??= containerId;
    return containerId;
  }

  /** Take a pod down as kubelet does: its function stopped gracefully and waited for, then the sandbox stopped and removed. */
  async remove(pod: Pod, signal?: AbortSignal): Promise<void> {
    if (pod.functionId) {
      await this.#cri.runtime("StopContainer", { containerId: pod.functionId, timeout: STOP_TIMEOUT_S }, { signal, timeoutMs: (STOP_TIMEOUT_S + 30) * 1000 });
      await waitContainerExited(this.#cri, pod.functionId, 60_000, signal);
    }
    await this.#removeSandbox(pod);
  }

  async #removeSandbox(pod: Pod): Promise<void> {
    // StopPodSandbox kills what still runs in the pod; RemovePodSandbox removes its containers too.
    await this.#cri.runtime("StopPodSandbox", { podSandboxId: pod.podSandboxId }, { timeoutMs: 120_000 });
    await this.#cri.runtime("RemovePodSandbox", { podSandboxId: pod.podSandboxId }, { timeoutMs: 120_000 });
    this.#pods.delete(pod.podSandboxId);
  }

  /** Remove every pod still here at once (nothing saved); problems go to onCleanupError. */
  async removeAll(): Promise<void> {
    for (const pod of [...this.#pods.values()]) {
      await this.#removeSandbox(pod).catch((error: unknown) => this.#options.onCleanupError?.(pod, error));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.removeAll();
  }
}

/**
 * A sidecar's command for an image of vhive's helloworld recipe: Python's gRPC client (in the
 * image) calls the function at localhost:<port> in the pod's shared network and prints the reply.
 */
export function helloworldSidecarCommand(name: string, port = 50051): string[] {
  return [
    "python3",
    "-c",
    [
      "import sys, grpc",
      "sys.path.insert(0, '/app')",
      "import helloworld_pb2, helloworld_pb2_grpc",
      `stub = helloworld_pb2_grpc.GreeterStub(grpc.insecure_channel('localhost:${port}'))`,
      `print(stub.SayHello(helloworld_pb2.HelloRequest(name=${JSON.stringify(name)}), timeout=60).message)`,
    ].join("; "),
  ];
}
