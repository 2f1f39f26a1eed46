/**
 * A pod's shim serving its sandbox through runc's shim (sandbox-proxy.ts): the bootstrap runc's
 * shim prints (containerd 2's JSON, containerd 1.6's address) picks the service the calls go on
 * to; calls for the sandbox's id reach that server unchanged, status errors included, while the
 * VM's own tasks stay the pod shim's; Shutdown for the sandbox lets the pod's shim go only once
 * runc's has gone too. Real ttrpc servers and clients on Unix sockets; no containerd.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { shim } from "../../../src/containerd/api.js";
import { parseShimBootstrap, SandboxProxy } from "../../../src/containerd/shim/sandbox-proxy.js";
import { ShimService } from "../../../src/containerd/shim/service.js";
import { connectTtrpc, GrpcCode, TtrpcServer, TtrpcStatusError, type ServiceImplementation } from "../../../src/containerd/ttrpc/index.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import type { EventPublisher } from "../../../src/containerd/publisher.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** containerd 2's runc shim: the same messages under containerd.task.v3.Task. */
const TaskV3 = { ...shim.TaskDefinition, fullName: "containerd.task.v3.Task" };

async function runcShim(implementation: ServiceImplementation<typeof shim.TaskDefinition>, definition = TaskV3): Promise<string> {
  const dir = await makeTempDir("sandbox-proxy");
  cleanups.push(() => dir.remove());
  const path = join(dir.path, "runc.sock");
  const server = new TtrpcServer();
  server.register(definition, implementation);
  await server.listen({ path });
  cleanups.push(() => server.destroy());
  return `unix://${path}`;
}

/** A pod shim's service with the sandbox forwarded, served on a socket of its own. */
async function podShim(proxy: SandboxProxy, onShutdown: () => void): Promise<unknown> {
  const dir = await makeTempDir("pod-shim");
  cleanups.push(() => dir.remove());
  const path = join(dir.path, "pod.sock");
  const service = new ShimService({
    host: () => Promise.reject(new Error("no VM in this test")),
    publisher: { publish: async () => {} } as unknown as EventPublisher,
    log: new NoOpLog(),
    onShutdown,
    processTimes: { shimStartedAt: 0, serverStartedAt: 0, servingAt: 0 },
    sandbox: proxy,
  });
  const server = new TtrpcServer();
  server.register(shim.TaskDefinition, service.implementation());
  await server.listen({ path });
  cleanups.push(() => server.destroy());
  cleanups.push(() => proxy.close());
  const client = await connectTtrpc(`unix://${path}`);
  cleanups.push(() => client.destroy());
  return client.service(shim.TaskDefinition) as never;
}

describe("parseShimBootstrap", () => {
  it("reads containerd 2's bootstrap JSON and containerd 1.6's plain address", () => {
    expect(parseShimBootstrap('{"version":3,"address":"unix:///run/containerd/s/ab","protocol":"ttrpc"}\n')).toEqual({ address: "unix:///run/containerd/s/ab", version: 3 });
    expect(parseShimBootstrap("unix:///run/containerd/s/ab\n")).toEqual({ address: "unix:///run/containerd/s/ab", version: 2 });
    expect(() => parseShimBootstrap('{"version":3,"address":"vsock://3:1024","protocol":"grpc"}')).toThrow(/no ttrpc address/);
  });
});

describe("a pod shim with its sandbox in runc's shim", () => {
  it("forwards the sandbox's calls to runc's shim, and answers its own tasks itself", async () => {
    const seen: string[] = [];
    const address = await runcShim({
      state: (request) => {
        seen.push(`state ${request.id}`);
        return { id: request.id, pid: 4242, bundle: "/bundle" };
      },
      kill: (request) => {
        throw new TtrpcStatusError(GrpcCode.NOT_FOUND, `runc: container ${request.id} not found`);
      },
    });
    const tasks = (await podShim(new SandboxProxy("sandbox-1", { address, version: 3 }), () => {})) as unknown as {
      state(request: { id: string }): Promise<{ id: string; pid: number }>;
      kill(request: { id: string; signal: number }): Promise<unknown>;
    };
    expect(await tasks.state({ id: "sandbox-1" })).toMatchObject({ id: "sandbox-1", pid: 4242 });
    // runc's status error comes back as it is.
    await expect(tasks.kill({ id: "sandbox-1", signal: 9 })).rejects.toMatchObject({ grpcCode: GrpcCode.NOT_FOUND, message: expect.stringContaining("runc: container sandbox-1 not found") });
    // Another id is the pod shim's own (no such VM task here), and never reaches runc's shim.
    await expect(tasks.state({ id: "function-1" })).rejects.toMatchObject({ grpcCode: GrpcCode.NOT_FOUND });
    expect(seen).toEqual(["state sandbox-1"]);
  });

  it("speaks containerd.task.v2.Task to containerd 1.6's runc shim", async () => {
    const address = await runcShim({ state: (request) => ({ id: request.id, pid: 7 }) }, shim.TaskDefinition);
    const tasks = (await podShim(new SandboxProxy("sandbox-2", parseShimBootstrap(address)), () => {})) as unknown as { state(request: { id: string }): Promise<{ pid: number }> };
    expect((await tasks.state({ id: "sandbox-2" })).pid).toBe(7);
    // Negative control: told it is containerd 2's (v3), the same call finds no such service.
    const wrong = (await podShim(new SandboxProxy("sandbox-2", { address, version: 3 }), () => {})) as unknown as { state(request: { id: string }): Promise<unknown> };
    await expect(wrong.state({ id: "sandbox-2" })).rejects.toMatchObject({ grpcCode: GrpcCode.UNIMPLEMENTED });
  });

  it("goes once the sandbox's Shutdown reached runc's shim and no VM task is left", async () => {
    let runcShutdown = 0;
    const address = await runcShim({ shutdown: () => (runcShutdown++, {}) });
    let podGone = 0;
    const tasks = (await podShim(new SandboxProxy("sandbox-3", { address, version: 3 }), () => podGone++)) as unknown as { shutdown(request: { id: string }): Promise<unknown> };
    // A Shutdown after a VM task's Delete: the sandbox still runs, so the pod's shim stays.
    await tasks.shutdown({ id: "function-3" });
    await new Promise((resolve) => setImmediate(resolve));
    expect([runcShutdown, podGone]).toEqual([0, 0]);
    await tasks.shutdown({ id: "sandbox-3" });
    await new Promise((resolve) => setImmediate(resolve));
    expect([runcShutdown, podGone]).toEqual([1, 1]);
  });
});
