/**
 * A CRI client for tests: kubelet's side of containerd's CRI plugin, `runtime.v1.RuntimeService`
 * and `runtime.v1.ImageService` over gRPC on a Unix socket. The .proto is loaded at run time with
 * @grpc/proto-loader from Debian's containerd source package (vendor/k8s.io/cri-api), which
 * scripts/setup.sh fetches into /var/cache/vhive/containerd-source/current; $VHIVE_CONTAINERD_SRC
 * names another source tree. Its gogoproto options come from Debian's gogo-protobuf package.
 *
 * Messages are plain objects with camelCase fields (podSandboxId), enums as their names
 * ("SANDBOX_READY"), int64 as numbers and every field present (proto-loader's `defaults`).
 *
 *   using cri = connectCri(env.socket);
 *   const { podSandboxId } = await cri.runtime("RunPodSandbox", { config, runtimeHandler: "runc" });
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceClientConstructor, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

/** A CRI message as proto-loader decodes it; tests read the fields they need. */
export type CriMessage = Record<string, any>;

export type RuntimeMethod =
  | "Version"
  | "Status"
  | "RunPodSandbox"
  | "StopPodSandbox"
  | "RemovePodSandbox"
  | "PodSandboxStatus"
  | "ListPodSandbox"
  | "CreateContainer"
  | "StartContainer"
  | "StopContainer"
  | "RemoveContainer"
  | "ListContainers"
  | "ContainerStatus"
  | "UpdateContainerResources"
  | "ExecSync"
  | "ContainerStats"
  | "ListContainerStats";
export type ImageMethod = "ListImages" | "ImageStatus" | "PullImage" | "RemoveImage" | "ImageFsInfo";

export interface CriClient extends Disposable {
  runtime(method: RuntimeMethod, request: CriMessage, options?: CallOptions): Promise<CriMessage>;
  image(method: ImageMethod, request: CriMessage, options?: CallOptions): Promise<CriMessage>;
  close(): void;
}

export interface CallOptions {
  /** Deadline of the call (default 60 s: a pod's first start pulls nothing but may be slow under TCG). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const SOURCE_DIR = "/var/cache/vhive/containerd-source/current";
const CRI_PROTO = "vendor/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto";
/** gogo.proto (golang-github-gogo-protobuf-dev) and the google/protobuf files it imports (libprotobuf-dev). */
const INCLUDE_DIRS = ["/usr/share/gocode/src", "/usr/include"];

/** The CRI api.proto of Debian's containerd source. */
export function criProtoPath(env: NodeJS.ProcessEnv = process.env): string {
  const path = join(env.VHIVE_CONTAINERD_SRC ?? SOURCE_DIR, CRI_PROTO);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run scripts/setup.sh (it fetches Debian's containerd source package), or set VHIVE_CONTAINERD_SRC to a containerd source tree`);
  }
  return path;
}

let services: { runtime: ServiceClientConstructor; image: ServiceClientConstructor } | undefined;
function loadServices(): NonNullable<typeof services> {
  if (services) return services;
  const definition = loadSync(criProtoPath(), { includeDirs: INCLUDE_DIRS, longs: Number, enums: String, defaults: true, oneofs: true });
  const v1 = (loadPackageDefinition(definition).runtime as GrpcObject).v1 as GrpcObject;
  services = { runtime: v1.RuntimeService as ServiceClientConstructor, image: v1.ImageService as ServiceClientConstructor };
  return services;
}

export function connectCri(socket: string): CriClient {
  const { runtime: RuntimeService, image: ImageService } = loadServices();
  const address = `unix://${socket}`;
  const runtimeClient = new RuntimeService(address, credentials.createInsecure());
  const imageClient = new ImageService(address, credentials.createInsecure());
  const call = (client: Client, method: string, request: CriMessage, options: CallOptions = {}) =>
    new Promise<CriMessage>((resolve, reject) => {
      const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      const fn = (client as unknown as Record<string, (req: CriMessage, opts: object, cb: (e: ServiceError | null, r: CriMessage) => void) => void>)[method];
      fn!.call(client, request, { deadline }, (error, response) => {
        if (error) reject(new CriError(method, error));
        else resolve(response);
      });
    });
  const close = () => {
    runtimeClient.close();
    imageClient.close();
  };
  return {
    runtime: (method, request, options) => call(runtimeClient, method, request, options),
    image: (method, request, options) => call(imageClient, method, request, options),
    close,
    [Symbol.dispose]: close,
  };
}

/** A failed CRI call: the method, the gRPC status code and containerd's message. */
export class CriError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(method: string, error: ServiceError) {
    super(`CRI ${method} failed: ${error.message}`);
    this.name = "CriError";
    this.code = error.code;
    this.details = error.details;
  }
}

/** A pod sandbox config as kubelet sends one: metadata, hostname, log directory, Linux defaults. */
export function podSandboxConfig(name: string, options: { logDirectory?: string; annotations?: Record<string, string>; labels?: Record<string, string> } = {}): CriMessage {
  return {
    metadata: { name, uid: `${name}-${process.pid}-${Date.now()}`, namespace: "vhive-test", attempt: 0 },
    hostname: name,
    logDirectory: options.logDirectory ?? "",
    labels: options.labels ?? {},
    annotations: options.annotations ?? {},
    linux: {},
  };
}

/** Poll ContainerStatus until the container has exited; returns its status. */
export async function waitContainerExited(cri: CriClient, containerId: string, timeoutMs = 60_000): Promise<CriMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await cri.runtime("ContainerStatus", { containerId });
    if (status.state === "CONTAINER_EXITED") return status;
    if (Date.now() > deadline) throw new Error(`container ${containerId} still ${status.state} after ${timeoutMs} ms`);
    await sleep(100);
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
