/**
 * A CRI client: kubelet's side of containerd's CRI plugin, `runtime.v1.RuntimeService` and
 * `runtime.v1.ImageService` over gRPC on a Unix socket, for scripts/cri-try.sh, the pod
 * benchmarks and the tests. The .proto is loaded at run time with @grpc/proto-loader from
 * Debian's containerd source package (vendor/k8s.io/cri-api), which scripts/setup.sh fetches
 * into /var/cache/vhive/containerd-source/current; $VHIVE_CONTAINERD_SRC names another source
 * tree. Its gogoproto options come from Debian's gogo-protobuf package.
 *
 * Messages are plain objects with camelCase fields (podSandboxId), enums as their names
 * ("SANDBOX_READY"), int64 as numbers and every field present (proto-loader's `defaults`).
 *
 *   using cri = connectCri(socket);
 *   const { podSandboxId } = await cri.runtime("RunPodSandbox", { config, runtimeHandler: "vhive" });
 *
 * A failed call rejects with CriError (ERR_CRI, with the gRPC code and containerd's message),
 * ERR_ABORTED when its signal aborts.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { credentials, loadPackageDefinition, type Client, type ClientUnaryCall, type GrpcObject, type ServiceClientConstructor, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { VhiveError } from "../../shared/errors.js";

/** A CRI message as proto-loader decodes it; callers read the fields they need. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
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
  runtime(method: RuntimeMethod, request: CriMessage, options?: CriCallOptions): Promise<CriMessage>;
  image(method: ImageMethod, request: CriMessage, options?: CriCallOptions): Promise<CriMessage>;
  close(): void;
}

export interface CriCallOptions {
  /** Deadline of the call (default 60 s: a pod's first start pulls nothing but may be slow under TCG). */
  timeoutMs?: number;
  /** Cancels the call (it rejects with ERR_ABORTED; containerd may still finish what it began). */
  signal?: AbortSignal;
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
    throw new VhiveError("ERR_TOOL_MISSING", `${path} is missing: the CRI client loads containerd's CRI api.proto from Debian's containerd source package`, {
      remedy: "run scripts/setup.sh (it fetches the source package), or set VHIVE_CONTAINERD_SRC to a containerd source tree",
    });
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

type UnaryMethod = (request: CriMessage, options: object, callback: (error: ServiceError | null, response: CriMessage) => void) => ClientUnaryCall;

export function connectCri(socket: string): CriClient {
  const { runtime: RuntimeService, image: ImageService } = loadServices();
  const address = `unix://${socket}`;
  const runtimeClient = new RuntimeService(address, credentials.createInsecure());
  const imageClient = new ImageService(address, credentials.createInsecure());
  const call = (client: Client, method: string, request: CriMessage, options: CriCallOptions = {}) =>
    new Promise<CriMessage>((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) return reject(aborted(method));
      const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      const fn = (client as unknown as Record<string, UnaryMethod>)[method]!;
      const onAbort = () => pending.cancel();
      const pending = fn.call(client, request, { deadline }, (error, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (error && signal?.aborted) reject(aborted(method));
        else if (error) reject(new CriError(method, error));
        else resolve(response);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
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

function aborted(method: string): VhiveError {
  return new VhiveError("ERR_ABORTED", `CRI ${method} cancelled`);
}

/** A failed CRI call: the method, the gRPC status code and containerd's message. */
export class CriError extends VhiveError {
  /** The gRPC status code (2 UNKNOWN for most of containerd's refusals, 5 NOT_FOUND, 4 DEADLINE_EXCEEDED). */
  readonly grpcCode: number;
  /** containerd's message alone, without the method. */
  readonly grpcMessage: string;
  constructor(method: string, error: ServiceError) {
    super("ERR_CRI", `CRI ${method} failed: ${error.message}`, { cause: error, remedy: "containerd's message says what it refused; its log has more, the shim's messages among them" });
    this.name = "CriError";
    this.grpcCode = error.code;
    this.grpcMessage = error.details;
  }
}
