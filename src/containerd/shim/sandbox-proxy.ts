/**
 * A pod's sandbox (its pause container), served by the pod's vhive shim and run by
 * containerd-shim-runc-v2: every task call for the sandbox's id goes on, unchanged, to the runc
 * shim that start launched for it, and its answer comes back.
 *
 * Why not hand the sandbox to runc's shim outright, as the sidecars are: containerd 2 starts a
 * pod's later containers on the sandbox's shim without running the runtime's `start` at all when
 * that shim speaks its task API v3 (core/runtime/v2/shim_manager.go: "join the pod's shim"),
 * and runc's does, so the function container would never reach vhive. A shim that answers
 * `start` with a plain address speaks v2, and containerd then runs `start` for every container,
 * as containerd 1.6 always does: vhive's shim is that shim, for the sandbox, and forwards. The
 * runc shim of containerd 2 serves containerd.task.v3.Task, containerd 1.6's containerd.task.v2.Task;
 * their messages are the same.
 */
import { shim } from "../api.js";
import { isVhiveError } from "../../shared/errors.js";
import { connectTtrpc, type CallContext, type TtrpcClient } from "../ttrpc/index.js";

type TaskMethods = typeof shim.TaskDefinition.methods;
export type TaskMethodKey = keyof TaskMethods;

/** runc's shim's answer to `start`: containerd 2's bootstrap JSON, or containerd 1.6's plain address. */
export function parseShimBootstrap(output: string): { address: string; version: number } {
  const text = output.trim();
  if (text.startsWith("{")) {
    const params = JSON.parse(text) as { version?: number; address?: string; protocol?: string };
    if (!params.address || (params.protocol && params.protocol !== "ttrpc")) throw new Error(`containerd-shim-runc-v2 gave no ttrpc address: ${text}`);
    return { address: params.address, version: params.version ?? 2 };
  }
  return { address: text, version: 2 };
}

export class SandboxProxy {
  readonly id: string;
  readonly #address: string;
  readonly #service: string;
  #client: Promise<TtrpcClient> | undefined;
  #shutDown = false;

  constructor(id: string, bootstrap: { address: string; version: number }) {
    this.id = id;
    this.#address = bootstrap.address;
    this.#service = bootstrap.version >= 3 ? "containerd.task.v3.Task" : shim.TaskDefinition.fullName;
  }

  /** Whether runc's shim was told to shut down (the sandbox is gone). */
  get shutDown(): boolean {
    return this.#shutDown;
  }

  /** One call of the sandbox's, answered by runc's shim: its status errors come back as they are. */
  async forward<K extends TaskMethodKey>(key: K, request: ReturnType<TaskMethods[K]["requestType"]["decode"]>, context: CallContext): Promise<ReturnType<TaskMethods[K]["responseType"]["decode"]>> {
    const method = shim.TaskDefinition.methods[key];
    const metadata = Object.fromEntries(context.metadata);
    // No deadline of the proxy's own: containerd's (timeout_nano) aborts the call through the signal.
    const payload = (method.requestType.encode as (message: unknown) => { finish(): Uint8Array })(request).finish();
    let answer: Uint8Array;
    try {
      answer = await (await this.#connection()).request(this.#service, method.name, payload, { signal: context.signal, timeoutMs: Infinity, metadata });
    } catch (error) {
      // runc's shim that went away while shutting down, or before, has shut down (containerd
      // takes a closed connection on Shutdown the same way).
      if (key !== "shutdown" || !isGone(error)) throw error;
      answer = shim.TaskDefinition.methods.shutdown.responseType.encode({}).finish();
    }
    if (key === "shutdown") this.#shutDown = true;
    return method.responseType.decode(answer) as ReturnType<TaskMethods[K]["responseType"]["decode"]>;
  }

  /** Tell runc's shim to go (a pod whose own shim could not start). */
  async shutdownRunc(): Promise<void> {
    await this.forward("shutdown", { id: this.id, now: true }, { service: "", method: "", metadata: new Map(), timeoutMs: undefined, signal: AbortSignal.timeout(10_000) });
  }

  /** One connection, made again after it failed or closed. */
  async #connection(): Promise<TtrpcClient> {
    const client = this.#client ?? connectTtrpc(this.#address);
    this.#client = client;
    try {
      const connected = await client;
      if (connected.refusing) throw new Error("closed");
      return connected;
    } catch {
      this.#client = connectTtrpc(this.#address);
      return this.#client;
    }
  }

  async close(): Promise<void> {
    const client = await this.#client?.catch(() => undefined);
    // A Wait of the sandbox's may still be pending: end the connection, not wait for it.
    await client?.destroy();
  }
}

function isGone(error: unknown): boolean {
  return isVhiveError(error, "ERR_TTRPC_DISCONNECTED") || isVhiveError(error, "ERR_TTRPC_CONNECT");
}
