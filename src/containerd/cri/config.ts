/**
 * What kubelet sends and reads through CRI, for the few shapes vhive's scripts and tests use: a
 * pod sandbox config, a container config, waiting for a container to exit, and reading a
 * container's log in kubelet's format.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { VhiveError } from "../../shared/errors.js";
import type { CriClient, CriMessage } from "./client.js";

export interface PodSandboxOptions {
  /** The pod's Kubernetes namespace (default "default"). */
  namespace?: string;
  /** Where the pod's container logs go: their logPath is relative to it (CRI's log_directory). */
  logDirectory?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

/** A pod sandbox config as kubelet sends one: metadata with a unique uid, hostname, log directory, Linux defaults. */
export function podSandboxConfig(name: string, options: PodSandboxOptions = {}): CriMessage {
  return {
    metadata: { name, uid: `${name}-${process.pid}-${Date.now()}`, namespace: options.namespace ?? "default", attempt: 0 },
    hostname: name,
    logDirectory: options.logDirectory ?? "",
    labels: options.labels ?? {},
    annotations: options.annotations ?? {},
    linux: {},
  };
}

export interface ContainerOptions {
  /** Replaces the image's entrypoint (CRI's command; Kubernetes' command). */
  command?: string[];
  env?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The log file, relative to the pod's log directory (default `<name>.log`). */
  logPath?: string;
  /** The container's memory limit (resources.limits.memory): a vhive function's guest memory. */
  memoryLimitBytes?: number;
}

/** A container config: the image by reference (imported or pulled before), and what replaces its defaults. */
export function containerConfig(name: string, image: string, options: ContainerOptions = {}): CriMessage {
  return {
    metadata: { name },
    image: { image },
    ...(options.command ? { command: options.command } : {}),
    envs: Object.entries(options.env ?? {}).map(([key, value]) => ({ key, value })),
    annotations: options.annotations ?? {},
    logPath: options.logPath ?? `${name}.log`,
    ...(options.memoryLimitBytes ? { linux: { resources: { memoryLimitInBytes: options.memoryLimitBytes } } } : {}),
  };
}

/** Poll ContainerStatus until the container has exited; returns its status. Rejects ERR_READY_TIMEOUT, ERR_CRI, ERR_ABORTED. */
export async function waitContainerExited(cri: CriClient, containerId: string, timeoutMs = 60_000, signal?: AbortSignal): Promise<CriMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await cri.runtime("ContainerStatus", { containerId }, { signal });
    if (status.state === "CONTAINER_EXITED") return status;
    if (Date.now() > deadline) {
      throw new VhiveError("ERR_READY_TIMEOUT", `container ${containerId} (${status.metadata?.name}) is still ${status.state} after ${timeoutMs} ms`, { remedy: "read the container's log" });
    }
    await sleep(100, undefined, { signal }).catch(() => {
      throw new VhiveError("ERR_ABORTED", `waiting for container ${containerId} to exit was cancelled`);
    });
  }
}

/**
 * The text of a container's CRI log (kubelet's format, one `<time> <stream> <P|F> <text>` line
 * per write; a P(artial) line continues on the next).
 */
export async function readCriLog(path: string): Promise<{ stdout: string; stderr: string }> {
  const out = { stdout: "", stderr: "" };
  for (const line of (await readFile(path, "utf8")).split("\n")) {
    const match = /^\S+ (stdout|stderr) ([PF]) ?(.*)$/.exec(line);
    if (!match) continue;
    const stream = match[1] as "stdout" | "stderr";
    out[stream] += match[3] + (match[2] === "F" ? "\n" : "");
  }
  return out;
}
