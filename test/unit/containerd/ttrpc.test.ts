import { once } from "node:events";
import { existsSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { shim } from "../../../src/containerd/api.js";
import { FrameParser, HEADER_BYTES, MAX_MESSAGE_BYTES, MessageType, decodeResponse, encodeFrame, requestFrame, type Frame } from "../../../src/containerd/ttrpc/codec.js";
import {
  GrpcCode,
  TtrpcServer,
  TtrpcStatusError,
  connectTtrpc,
  type CallContext,
  type ServiceImplementation,
  type TtrpcClient,
} from "../../../src/containerd/ttrpc/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const Task = shim.TaskDefinition;
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

async function socketPath(): Promise<string> {
  const dir = await makeTempDir("ttrpc-test");
  cleanups.push(() => dir.remove());
  return join(dir.path, "ttrpc.sock");
}

async function serve(implementation: ServiceImplementation<typeof Task>): Promise<{ server: TtrpcServer; path: string }> {
  const path = await socketPath();
  const server = new TtrpcServer();
  server.register(Task, implementation);
  await server.listen({ path });
  cleanups.push(() => server.destroy());
  return { server, path };
}

async function connect(path: string, timeoutMs?: number): Promise<TtrpcClient> {
  const client = await connectTtrpc(path, { timeoutMs });
  cleanups.push(() => client.destroy());
  return client;
}

/** A hand-driven client: writes raw frames and reads the frames that come back. */
async function rawConnect(path: string): Promise<{ socket: Socket; next: () => Promise<Frame> }> {
  const socket = createConnection({ path });
  cleanups.push(() => socket.destroy());
  await once(socket, "connect");
  const parser = new FrameParser();
  const frames: Frame[] = [];
  const waiters: ((frame: Frame) => void)[] = [];
  socket.on("data", (chunk: Buffer) => {
    for (const parsed of parser.push(chunk)) {
      if (parsed.kind !== "frame") throw new Error("the server sent an oversized frame");
      const waiter = waiters.shift();
      if (waiter) waiter(parsed.frame);
      else frames.push(parsed.frame);
    }
  });
  const next = () => {
    const frame = frames.shift();
    return frame ? Promise.resolve(frame) : new Promise<Frame>((resolve) => waiters.push(resolve));
  };
  return { socket, next };
}

function stateRequest(id: string, timeoutNano = 0) {
  return { service: Task.fullName, method: "State", payload: shim.StateRequest.encode(shim.StateRequest.create({ id })).finish(), timeoutNano, metadata: [] };
}

async function rejection(promise: Promise<unknown>): Promise<VhiveError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VhiveError);
    return error as VhiveError;
  }
  throw new Error("expected the call to reject");
}

/** A promise and its resolve, to hold a handler until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("ttrpc server and client over a Unix socket", () => {
  it("answer a typed call with the handler's response", async () => {
    const { path } = await serve({
      state: (request, context) => ({ id: request.id, pid: 42, status: 2, bundle: `${context.service}/${context.method}` }),
    });
    const task = (await connect(path)).service(Task);
    const answer = await task.state({ id: "c1" });
    expect(answer).toMatchObject({ id: "c1", pid: 42, bundle: "containerd.task.v2.Task/State", stdout: "", exitedAt: undefined });
  });

  it("serve the calls of one connection concurrently, each answered when it finishes", async () => {
    const slow = gate();
    const order: string[] = [];
    const { path } = await serve({
      state: async (request) => {
        if (request.id === "slow") await slow.promise;
        order.push(request.id);
        return { id: request.id };
      },
    });
    const task = (await connect(path)).service(Task);
    const first = task.state({ id: "slow" });
    const second = await task.state({ id: "fast" });
    expect(second.id).toBe("fast");
    slow.open();
    expect((await first).id).toBe("slow");
    expect(order).toEqual(["fast", "slow"]);
  });

  it("answer an unknown service or a method without a handler with UNIMPLEMENTED", async () => {
    const { path } = await serve({ state: () => ({}) });
    const client = await connect(path);
    const noService = await rejection(client.request("containerd.nope.v1.Nope", "Do", new Uint8Array(0)));
    expect(noService).toBeInstanceOf(TtrpcStatusError);
    expect((noService as TtrpcStatusError).grpcCode).toBe(GrpcCode.UNIMPLEMENTED);
    expect(noService.message).toBe("UNIMPLEMENTED: service containerd.nope.v1.Nope");
    const noMethod = (await rejection(client.service(Task).pids({ id: "c1" }))) as TtrpcStatusError;
    expect([noMethod.grpcCode, noMethod.grpcMessage]).toEqual([GrpcCode.UNIMPLEMENTED, "method Pids"]);
  });

  it("answer a handler's error with its status: vhive codes mapped, explicit gRPC codes kept", async () => {
    const { path } = await serve({
      state: (request) => {
        if (request.id === "invalid") throw new VhiveError("ERR_VALIDATION", "annotation vhive.start is 'fast'");
        if (request.id === "missing") throw new VhiveError("ERR_IMAGE_NOT_FOUND", "no image for this rootfs");
        if (request.id === "explicit") throw new TtrpcStatusError(GrpcCode.FAILED_PRECONDITION, "task must be stopped");
        throw new Error("a bug");
      },
    });
    const task = (await connect(path)).service(Task);
    const statusOf = async (id: string) => {
      const error = (await rejection(task.state({ id }))) as TtrpcStatusError;
      expect(error.code).toBe("ERR_TTRPC_STATUS");
      return [error.grpcCode, error.grpcMessage];
    };
    expect(await statusOf("invalid")).toEqual([GrpcCode.INVALID_ARGUMENT, "[ERR_VALIDATION] annotation vhive.start is 'fast'"]);
    expect(await statusOf("missing")).toEqual([GrpcCode.NOT_FOUND, "[ERR_IMAGE_NOT_FOUND] no image for this rootfs"]);
    expect(await statusOf("explicit")).toEqual([GrpcCode.FAILED_PRECONDITION, "task must be stopped"]);
    expect(await statusOf("other")).toEqual([GrpcCode.UNKNOWN, "a bug"]);
  });

  it("give the handler the call's metadata (keys lower-cased) and deadline", async () => {
    let seen: CallContext | undefined;
    const { path } = await serve({
      state: (_request, context) => {
        seen = context;
        return {};
      },
    });
    const client = await connectTtrpc(path, { metadata: { "containerd-namespace-ttrpc": "k8s.io" } });
    cleanups.push(() => client.destroy());
    await client.service(Task).state({ id: "c1" }, { timeoutMs: 2_500, metadata: { "X-Trace": ["a", "b"] } });
    expect(seen?.metadata.get("containerd-namespace-ttrpc")).toEqual(["k8s.io"]);
    expect(seen?.metadata.get("x-trace")).toEqual(["a", "b"]);
    expect(seen?.timeoutMs).toBe(2_500);
    expect(seen?.signal.aborted).toBe(false);
  });

  it("server: answers DEADLINE_EXCEEDED at the request's timeout_nano and aborts the handler", async () => {
    let signal: AbortSignal | undefined;
    const { path } = await serve({
      state: (_request, context) => {
        signal = context.signal;
        return new Promise(() => {}); // never answers
      },
    });
    const raw = await rawConnect(path);
    raw.socket.write(requestFrame(1, stateRequest("c1", 50_000_000)));
    const frame = await raw.next();
    expect(frame.streamId).toBe(1);
    expect(decodeResponse(frame).status?.code).toBe(GrpcCode.DEADLINE_EXCEEDED);
    expect(signal?.aborted).toBe(true);
  });

  it("client: a call rejects with DEADLINE_EXCEEDED at its timeout, and the connection serves the next call", async () => {
    const stuck = gate();
    cleanups.push(() => stuck.open());
    const { path } = await serve({
      state: async (request) => {
        if (request.id === "stuck") await stuck.promise; // ignores its signal
        return { id: request.id };
      },
    });
    const client = await connect(path);
    const task = client.service(Task);
    const started = performance.now();
    const late = (await rejection(task.state({ id: "stuck" }, { timeoutMs: 100 }))) as TtrpcStatusError;
    expect(late.grpcCode).toBe(GrpcCode.DEADLINE_EXCEEDED);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    expect(client.pendingCount).toBe(0);
    expect((await task.state({ id: "next" })).id).toBe("next");
  });

  it("client: calls in flight reject with ERR_TTRPC_DISCONNECTED when the server goes away, and so do later ones", async () => {
    let signal: AbortSignal | undefined;
    const { server, path } = await serve({
      state: (_request, context) => {
        signal = context.signal;
        return new Promise(() => {});
      },
    });
    const client = await connect(path);
    const task = client.service(Task);
    const call = rejection(task.state({ id: "c1" }));
    await expect.poll(() => signal).toBeDefined();
    await server.destroy();
    expect((await call).code).toBe("ERR_TTRPC_DISCONNECTED");
    expect(signal?.aborted).toBe(true);
    await client.closed;
    expect((await rejection(task.state({ id: "c2" }))).code).toBe("ERR_TTRPC_DISCONNECTED");
  });

  it("server: a client that disconnects aborts its handlers and leaves no connection behind", async () => {
    let signal: AbortSignal | undefined;
    const { server, path } = await serve({
      state: (_request, context) => {
        signal = context.signal;
        return new Promise(() => {});
      },
    });
    const client = await connect(path);
    void client.service(Task).state({ id: "c1" }).catch(() => {});
    await expect.poll(() => signal).toBeDefined();
    expect(server.connectionCount).toBe(1);
    await client.destroy();
    await expect.poll(() => server.connectionCount).toBe(0);
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as VhiveError).code).toBe("ERR_TTRPC_DISCONNECTED");
  });

  it("server: close() lets calls in flight finish, then ends the connections and removes the socket", async () => {
    const slow = gate();
    let entered = false;
    const { server, path } = await serve({
      state: async (request) => {
        entered = true;
        await slow.promise;
        return { id: request.id };
      },
    });
    const client = await connect(path);
    const call = client.service(Task).state({ id: "c1" });
    await expect.poll(() => entered).toBe(true);
    const closing = server.close();
    expect(server.close()).toBe(closing);
    expect((await rejection(connectTtrpc(path))).code).toBe("ERR_TTRPC_CONNECT");
    slow.open();
    expect((await call).id).toBe("c1");
    await closing;
    await client.closed;
    expect(server.connectionCount).toBe(0);
    expect(existsSync(path)).toBe(false);
    await server.destroy(); // still safe
    await expect(server.listen({ path })).rejects.toMatchObject({ code: "ERR_DISPOSED" });
  });

  it("client: close() waits for its calls in flight; later calls reject with ERR_DISPOSED", async () => {
    const slow = gate();
    const { path } = await serve({
      state: async (request) => {
        await slow.promise;
        return { id: request.id };
      },
    });
    const client = await connect(path);
    const task = client.service(Task);
    const call = task.state({ id: "c1" });
    const closing = client.close();
    expect((await rejection(task.state({ id: "c2" }))).code).toBe("ERR_DISPOSED");
    slow.open();
    expect((await call).id).toBe("c1");
    await closing;
    expect(client.close()).toBe(closing);
  });

  it("client: an aborted signal rejects the call with ERR_ABORTED", async () => {
    const { path } = await serve({ state: (request) => (request.id === "hang" ? new Promise(() => {}) : { id: request.id }) });
    const client = await connect(path);
    const task = client.service(Task);
    const controller = new AbortController();
    const call = task.state({ id: "hang" }, { signal: controller.signal });
    controller.abort();
    expect((await rejection(call)).code).toBe("ERR_ABORTED");
    expect(client.pendingCount).toBe(0);
    expect((await task.state({ id: "next" })).id).toBe("next");
  });

  it("server: answers protocol faults on their stream and keeps the connection: even ids, bad requests, oversize frames", async () => {
    const { path } = await serve({ state: (request) => ({ id: request.id }) });
    const raw = await rawConnect(path);
    const statusOf = async () => decodeResponse(await raw.next()).status;

    raw.socket.write(requestFrame(2, stateRequest("even")));
    expect(await statusOf()).toMatchObject({ code: GrpcCode.INVALID_ARGUMENT, message: "StreamID must be odd for client initiated streams" });

    raw.socket.write(encodeFrame(1, MessageType.REQUEST, Buffer.from([0x0a, 0x05, 0x61])));
    expect((await statusOf())?.code).toBe(GrpcCode.INVALID_ARGUMENT);

    // Not a request (a response, sent the wrong way): dropped, as Go's ttrpc drops it.
    raw.socket.write(encodeFrame(3, MessageType.RESPONSE, new Uint8Array(0)));

    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 0);
    header.writeUInt32BE(5, 4);
    header.writeUInt8(MessageType.REQUEST, 8);
    raw.socket.write(Buffer.concat([header, Buffer.alloc(MAX_MESSAGE_BYTES + 1)]));
    const oversize = await raw.next();
    expect(oversize.streamId).toBe(5);
    expect(decodeResponse(oversize).status?.code).toBe(GrpcCode.RESOURCE_EXHAUSTED);

    raw.socket.write(requestFrame(7, stateRequest("after")));
    const after = await raw.next();
    expect(after.streamId).toBe(7);
    expect(shim.StateResponse.decode(decodeResponse(after).payload).id).toBe("after");
  });

  it("refuse messages over 4 MiB: a request before it is sent, a response or error with RESOURCE_EXHAUSTED", async () => {
    const { path } = await serve({
      state: (request) => {
        if (request.id === "loud") throw new Error("x".repeat(MAX_MESSAGE_BYTES + 1));
        return { bundle: "x".repeat(MAX_MESSAGE_BYTES + 1) };
      },
    });
    const client = await connect(path);
    const task = client.service(Task);
    const tooBigToSend = (await rejection(task.state({ id: "x".repeat(MAX_MESSAGE_BYTES) }))) as TtrpcStatusError;
    expect(tooBigToSend.grpcCode).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    const tooBigToAnswer = (await rejection(task.state({ id: "c1" }))) as TtrpcStatusError;
    expect(tooBigToAnswer.grpcCode).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    const tooBigAnError = (await rejection(task.state({ id: "loud" }))) as TtrpcStatusError;
    expect(tooBigAnError.grpcCode).toBe(GrpcCode.RESOURCE_EXHAUSTED);
  });

  it("connect: no socket at the path is ERR_TTRPC_CONNECT; a socket path taken is ERR_TTRPC_LISTEN", async () => {
    const path = await socketPath();
    const error = await rejection(connectTtrpc(`unix://${path}`));
    expect(error.code).toBe("ERR_TTRPC_CONNECT");
    expect(error.message).toContain("there is no socket there");
    await expect(connectTtrpc("tcp://127.0.0.1:1")).rejects.toMatchObject({ code: "ERR_VALIDATION" });
    const { path: taken } = await serve({});
    await expect(new TtrpcServer().listen({ path: taken })).rejects.toMatchObject({ code: "ERR_TTRPC_LISTEN" });
  });

  it("register: a service twice is refused", () => {
    const server = new TtrpcServer();
    server.register(Task, {});
    expect(() => server.register(Task, {})).toThrow(expect.objectContaining({ code: "ERR_VALIDATION" }));
  });
});
