import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadPackageDefinition, Server, ServerCredentials, status, type GrpcObject, type ServiceClientConstructor, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterEach, describe, expect, it } from "vitest";
import { connectCri, containerConfig, criProtoPath, CriError, podSandboxConfig, readCriLog, type CriMessage } from "../../../src/containerd/cri/index.js";
import { isVhiveError, VhiveError } from "../../../src/shared/errors.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

type Handler = (call: { request: CriMessage }, callback: (error: Partial<ServiceError> | null, response?: CriMessage) => void) => void;

/** A fake CRI runtime service on a Unix socket, from the same api.proto the client loads. */
async function fakeRuntime(handlers: Record<string, Handler>): Promise<string> {
  const dir = await makeTempDir("cri-client-test");
  cleanups.push(() => dir.remove());
  const definition = loadSync(criProtoPath(), { includeDirs: ["/usr/share/gocode/src", "/usr/include"], longs: Number, enums: String, defaults: true, oneofs: true });
  const v1 = (loadPackageDefinition(definition).runtime as GrpcObject).v1 as GrpcObject;
  const server = new Server();
  server.addService((v1.RuntimeService as ServiceClientConstructor).service, handlers);
  const socket = join(dir.path, "cri.sock");
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
  cleanups.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return socket;
}

describe("the CRI client", () => {
  it("sends a pod sandbox config and reads the answer with camelCase fields and enum names", async () => {
    let received: CriMessage | undefined;
    const socket = await fakeRuntime({
      RunPodSandbox: (call, callback) => {
        received = call.request;
        callback(null, { podSandboxId: "pod-1" });
      },
      PodSandboxStatus: (_call, callback) => callback(null, { status: { id: "pod-1", state: "SANDBOX_READY", network: { ip: "10.209.1.5" } } }),
    });
    using cri = connectCri(socket);
    const config = podSandboxConfig("fn", { annotations: { "dev.vhive.function-container": "user-container" } });
    expect(await cri.runtime("RunPodSandbox", { config, runtimeHandler: "vhive" })).toEqual({ podSandboxId: "pod-1" });
    expect(received?.runtimeHandler).toBe("vhive");
    expect(received?.config.metadata).toMatchObject({ name: "fn", namespace: "default" });
    expect(received?.config.annotations).toEqual({ "dev.vhive.function-container": "user-container" });
    const { status: pod } = await cri.runtime("PodSandboxStatus", { podSandboxId: "pod-1" });
    expect(pod.state).toBe("SANDBOX_READY");
    expect(pod.network.ip).toBe("10.209.1.5");
  });

  it("builds container configs with the image, env, annotations, log path and memory limit", () => {
    expect(containerConfig("user-container", "vhive.local/helloworld:try", { env: { A: "1" }, annotations: { "dev.vhive.start": "boot" }, memoryLimitBytes: 512 << 20 })).toEqual({
      metadata: { name: "user-container" },
      image: { image: "vhive.local/helloworld:try" },
      envs: [{ key: "A", value: "1" }],
      annotations: { "dev.vhive.start": "boot" },
      logPath: "user-container.log",
      linux: { resources: { memoryLimitInBytes: 512 << 20 } },
    });
    expect(containerConfig("sidecar", "busybox", { command: ["true"], logPath: "s.log" })).toMatchObject({ command: ["true"], logPath: "s.log", envs: [] });
  });

  it("rejects a refused call with ERR_CRI, the method, the gRPC code and containerd's message", async () => {
    const socket = await fakeRuntime({
      StartContainer: (_call, callback) => callback({ code: status.UNKNOWN, details: "the container's memory limit (64 MiB) is less than its function needs" }),
    });
    using cri = connectCri(socket);
    const error = await cri.runtime("StartContainer", { containerId: "c" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CriError);
    expect(isVhiveError(error, "ERR_CRI")).toBe(true);
    const refused = error as CriError;
    expect(refused.message).toContain("CRI StartContainer failed");
    expect(refused.grpcCode).toBe(status.UNKNOWN);
    expect(refused.grpcMessage).toBe("the container's memory limit (64 MiB) is less than its function needs");
  });

  it("cancels a call in flight when its signal aborts, with ERR_ABORTED", async () => {
    const socket = await fakeRuntime({ RunPodSandbox: () => {} }); // never answers
    using cri = connectCri(socket);
    const controller = new AbortController();
    const pending = cri.runtime("RunPodSandbox", { config: podSandboxConfig("slow") }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VhiveError);
    expect((error as VhiveError).code).toBe("ERR_ABORTED");
    await expect(cri.runtime("Version", {}, { signal: controller.signal })).rejects.toMatchObject({ code: "ERR_ABORTED" });
  });

  it("times a call out at its deadline", async () => {
    const socket = await fakeRuntime({ Version: () => {} });
    using cri = connectCri(socket);
    const error = (await cri.runtime("Version", {}, { timeoutMs: 100 }).catch((e: unknown) => e)) as CriError;
    expect(error.code).toBe("ERR_CRI");
    expect(error.grpcCode).toBe(status.DEADLINE_EXCEEDED);
  });

  it("reads a container's log in kubelet's format, joining partial lines", async () => {
    const dir = await makeTempDir("cri-log-test");
    cleanups.push(() => dir.remove());
    const path = join(dir.path, "c.log");
    await writeFile(
      path,
      [
        "2026-12-01T10:00:00.000000001Z stdout F Hello, sidecar!",
        "2026-12-01T10:00:00.000000002Z stderr P vhive: started ",
        "2026-12-01T10:00:00.000000003Z stderr F by prefetch",
        "",
      ].join("\n"),
    );
    expect(await readCriLog(path)).toEqual({ stdout: "Hello, sidecar!\n", stderr: "vhive: started by prefetch\n" });
  });
});
