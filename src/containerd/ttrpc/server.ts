/**
 * A ttrpc server on Unix sockets: services registered by full name (containerd.task.v2.Task)
 * with typed handlers, each request of a connection served concurrently, every answer a
 * Response frame on the request's stream (framing in codec.ts):
 *
 *   client                                   server
 *     | -- [len|1|REQ] Request{Task,State} --> |  handler(StateRequest, context)
 *     | -- [len|3|REQ] Request{Task,Kill}  --> |  handler(KillRequest, context)
 *     | <-- [len|3|RES] Response{OK, Empty} -- |  (answers in the order they finish)
 *     | <-- [len|1|RES] Response{NOT_FOUND} -- |
 *
 * As Go's ttrpc does: an unknown service or method answers UNIMPLEMENTED; a request that does
 * not decode or has an even stream id answers INVALID_ARGUMENT; a frame over 4 MiB answers
 * RESOURCE_EXHAUSTED; frames that are not requests are dropped. A handler's error becomes a
 * status through statusFromError (status.ts). timeout_nano aborts the handler's signal and
 * answers DEADLINE_EXCEEDED at once; a handler that finishes later is not heard.
 *
 * close() stops accepting, lets each connection finish the calls it has, then ends it;
 * destroy() ends every connection and aborts every handler now. Both are idempotent and
 * resolve once every socket and listener is closed (a listener on a path removes its file).
 *
 * Throws ERR_TTRPC_LISTEN (listen), ERR_VALIDATION (register twice, or a streaming method)
 * and ERR_DISPOSED (use after close).
 */
import { createServer, type Server, type Socket } from "node:net";
import { VhiveError, messageOf } from "../../shared/errors.js";
import { NoOpLog, type Log } from "../../shared/log.js";
import { FrameParser, MessageType, decodeRequest, oversizeError, responseFrame, type Frame, type Request } from "./codec.js";
import type { CallContext, MethodDefinition, ServiceDefinition, ServiceImplementation } from "./service.js";
import { GrpcCode, OK_STATUS, TtrpcStatusError, statusFromError, type Status } from "./status.js";

export type ListenTarget = { path: string } | { fd: number };

export interface TtrpcServerOptions {
  log?: Log;
}

interface RegisteredMethod {
  definition: MethodDefinition;
  handler: (request: unknown, context: CallContext) => unknown;
}

// setTimeout fires at once for delays past 2^31-1 ms; a deadline that far off is no deadline.
const MAX_TIMER_MS = 2 ** 31 - 1;

export class TtrpcServer implements AsyncDisposable {
  readonly #log: Log;
  readonly #services = new Map<string, Map<string, RegisteredMethod>>();
  readonly #listeners = new Set<Server>();
  readonly #listenersClosed: Promise<void>[] = [];
  readonly #connections = new Set<ServerConnection>();
  #state: "open" | "closing" | "destroyed" = "open";
  #closing: Promise<void> | undefined;

  constructor(options: TtrpcServerOptions = {}) {
    this.#log = options.log ?? new NoOpLog();
  }

  /** Serve `implementation` under the definition's full name; methods it lacks answer UNIMPLEMENTED. */
  register<D extends ServiceDefinition>(definition: D, implementation: ServiceImplementation<D>): void {
    if (this.#services.has(definition.fullName)) {
      throw new VhiveError("ERR_VALIDATION", `ttrpc service ${definition.fullName} is registered twice`);
    }
    const methods = new Map<string, RegisteredMethod>();
    for (const [key, method] of Object.entries(definition.methods)) {
      const handler = (implementation as Record<string, RegisteredMethod["handler"] | undefined>)[key];
      if (handler === undefined) continue;
      if (method.requestStream || method.responseStream) {
        throw new VhiveError("ERR_VALIDATION", `${definition.fullName}/${method.name} is a streaming method; this ttrpc server serves unary calls only`);
      }
      methods.set(method.name, { definition: method, handler: handler.bind(implementation) });
    }
    this.#services.set(definition.fullName, methods);
  }

  /** Listen on a Unix socket path (made here, removed on close) or a listening socket's fd. */
  async listen(target: ListenTarget): Promise<void> {
    this.#checkOpen();
    const where = "path" in target ? target.path : `fd ${target.fd}`;
    const listener = createServer({ allowHalfOpen: false }, (socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) =>
        reject(new VhiveError("ERR_TTRPC_LISTEN", `ttrpc server cannot listen on ${where}: ${messageOf(error)}`, { cause: error }));
      listener.once("error", onError);
      listener.listen("path" in target ? { path: target.path } : { fd: target.fd }, () => {
        listener.off("error", onError);
        resolve();
      });
    });
    listener.on("error", (error) => this.#log.warn("ttrpc listener failed", { where, error: messageOf(error) }));
    this.#listeners.add(listener);
    this.#listenersClosed.push(new Promise((resolve) => listener.once("close", () => resolve())));
    if (this.#state !== "open") listener.close(); // closed while it was starting
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Stop accepting; each connection ends once its calls are answered. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#state = "closing";
    for (const listener of this.#listeners) listener.close();
    this.#closing = Promise.all([
      ...this.#listenersClosed,
      ...[...this.#connections].map((connection) => connection.drain()),
    ]).then(() => undefined);
    return this.#closing;
  }

  /** End every connection and abort every handler now. */
  destroy(): Promise<void> {
    const closing = this.close();
    if (this.#state !== "destroyed") {
      this.#state = "destroyed";
      for (const connection of this.#connections) connection.destroy();
    }
    return closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #checkOpen(): void {
    if (this.#state !== "open") throw new VhiveError("ERR_DISPOSED", "the ttrpc server is closed");
  }

  #accept(socket: Socket): void {
    if (this.#state !== "open") {
      socket.destroy();
      return;
    }
    const connection = new ServerConnection(socket, this.#log, (service, method) => this.#resolve(service, method));
    this.#connections.add(connection);
    void connection.closed.then(() => this.#connections.delete(connection));
  }

  #resolve(service: string, method: string): RegisteredMethod {
    const methods = this.#services.get(service);
    // Go's wording: "service X" / "method X".
    if (methods === undefined) throw new TtrpcStatusError(GrpcCode.UNIMPLEMENTED, `service ${service}`);
    const registered = methods.get(method);
    if (registered === undefined) throw new TtrpcStatusError(GrpcCode.UNIMPLEMENTED, `method ${method}`);
    return registered;
  }
}

/** One accepted socket: parses requests, runs handlers, writes answers. */
class ServerConnection {
  readonly closed: Promise<void>;
  readonly #socket: Socket;
  readonly #log: Log;
  readonly #resolve: (service: string, method: string) => RegisteredMethod;
  readonly #parser = new FrameParser();
  /** Calls not yet answered, by stream id. */
  readonly #inFlight = new Map<number, AbortController>();
  #draining = false;

  constructor(socket: Socket, log: Log, resolve: (service: string, method: string) => RegisteredMethod) {
    this.#socket = socket;
    this.#log = log;
    this.#resolve = resolve;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => {
      for (const parsed of this.#parser.push(chunk)) {
        if (parsed.kind === "oversize") {
          this.#send(parsed.streamId, oversizeError(parsed.lengthBytes).toStatus());
        } else {
          this.#onFrame(parsed.frame);
        }
      }
    });
    // A reset or a write after the peer left: 'close' follows and ends the calls.
    socket.on("error", (error) => this.#log.debug("ttrpc connection error", { error: messageOf(error) }));
    socket.once("close", () => {
      const gone = new VhiveError("ERR_TTRPC_DISCONNECTED", "the ttrpc client closed the connection");
      for (const controller of this.#inFlight.values()) controller.abort(gone);
      this.#inFlight.clear();
    });
  }

  /** End the connection once every call in flight is answered. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#inFlight.size === 0) this.#socket.end();
    return this.closed;
  }

  destroy(): void {
    const destroyed = new VhiveError("ERR_ABORTED", "the ttrpc server was destroyed");
    for (const controller of this.#inFlight.values()) controller.abort(destroyed);
    this.#inFlight.clear();
    this.#socket.destroy();
  }

  #onFrame(frame: Frame): void {
    if (frame.type !== MessageType.REQUEST) {
      this.#log.debug("ttrpc: dropping a frame that is not a request", { streamId: frame.streamId, type: frame.type });
      return;
    }
    let request: Request;
    try {
      request = decodeRequest(frame);
    } catch (error) {
      this.#send(frame.streamId, { code: GrpcCode.INVALID_ARGUMENT, message: `unmarshal request error: ${messageOf(error)}`, details: [] });
      return;
    }
    if (frame.streamId % 2 !== 1) {
      this.#send(frame.streamId, { code: GrpcCode.INVALID_ARGUMENT, message: "StreamID must be odd for client initiated streams", details: [] });
      return;
    }
    if (this.#inFlight.has(frame.streamId)) {
      this.#send(frame.streamId, { code: GrpcCode.INVALID_ARGUMENT, message: `stream ${frame.streamId} already has a call in flight`, details: [] });
      return;
    }
    void this.#call(frame.streamId, request);
  }

  async #call(streamId: number, request: Request): Promise<void> {
    const controller = new AbortController();
    this.#inFlight.set(streamId, controller);
    const where = `${request.service}/${request.method}`;
    // 0 is no deadline; a negative one (Go sends deadline - now) has passed already.
    const timeoutMs = request.timeoutNano === 0 ? undefined : Math.max(0, request.timeoutNano / 1e6);
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) {
      timer = setTimeout(() => {
        const error = new TtrpcStatusError(GrpcCode.DEADLINE_EXCEEDED, `${where}: the caller's deadline of ${timeoutMs} ms passed`);
        if (this.#finish(streamId, controller)) {
          controller.abort(error);
          this.#send(streamId, error.toStatus());
        }
      }, Math.ceil(timeoutMs));
    }
    let status: Status = OK_STATUS;
    let payload: Uint8Array = new Uint8Array(0);
    try {
      const method = this.#resolve(request.service, request.method);
      let message: unknown;
      try {
        message = method.definition.requestType.decode(request.payload);
      } catch (error) {
        throw new TtrpcStatusError(GrpcCode.INTERNAL, `ttrpc: error unmarshalling payload: ${messageOf(error)}`);
      }
      const metadata = new Map<string, string[]>();
      for (const { key, value } of request.metadata) {
        const lower = key.toLowerCase();
        metadata.set(lower, [...(metadata.get(lower) ?? []), value]);
      }
      const context: CallContext = { service: request.service, method: request.method, metadata, timeoutMs, signal: controller.signal };
      const result = await method.handler(message, context);
      const responseType = method.definition.responseType;
      payload = responseType.encode(responseType.fromPartial(result ?? {})).finish();
    } catch (error) {
      status = statusFromError(error);
      const level = status.code === GrpcCode.UNKNOWN || status.code === GrpcCode.INTERNAL ? "warn" : "debug";
      this.#log[level]("ttrpc call failed", { call: where, code: status.code, error: status.message });
    } finally {
      clearTimeout(timer);
    }
    if (!this.#finish(streamId, controller)) return; // answered already (deadline) or the connection is gone
    this.#send(streamId, status, payload);
  }

  /** Take the call off the in-flight set; false if it was not there (already answered). */
  #finish(streamId: number, controller: AbortController): boolean {
    if (this.#inFlight.get(streamId) !== controller) return false;
    this.#inFlight.delete(streamId);
    return true;
  }

  #send(streamId: number, status: Status, payload: Uint8Array = new Uint8Array(0)): void {
    let frame: Buffer;
    try {
      frame = responseFrame(streamId, { status, payload });
    } catch (error) {
      // Over 4 MiB (a huge response, or error message): the caller learns that instead.
      frame = responseFrame(streamId, { status: statusFromError(error), payload: new Uint8Array(0) });
    }
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.write(frame);
    if (this.#draining && this.#inFlight.size === 0) this.#socket.end();
  }
}
