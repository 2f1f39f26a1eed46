/**
 * A ttrpc client on a Unix socket: unary calls, many at once on one connection, each on its
 * own odd stream id (framing in codec.ts):
 *
 *   client                                        server
 *     | -- [len|1|REQ] Request{svc,method,payload,timeout_nano,metadata} --> |
 *     | -- [len|3|REQ] ...                                                 --> |
 *     | <-- [len|3|RES] Response{Status, payload}                          --- |
 *     | <-- [len|1|RES] Response{Status{NOT_FOUND, "..."}}                 --- |
 *
 * Every call has a deadline (the client's timeoutMs unless the call says otherwise; Infinity
 * for none): it is sent as timeout_nano so the server gives up too, and the call rejects with
 * DEADLINE_EXCEEDED when it passes; an answer that comes later is dropped. A non-OK status
 * rejects with TtrpcStatusError (ERR_TTRPC_STATUS, with the gRPC code). When the connection
 * drops, every call in flight rejects with ERR_TTRPC_DISCONNECTED, and so does every later
 * call. close() waits for the calls in flight, then ends the connection; destroy() ends it
 * now; both idempotent; calls after either reject with ERR_DISPOSED.
 *
 * Throws ERR_VALIDATION (an address that is not a Unix socket), ERR_TTRPC_CONNECT,
 * ERR_TTRPC_DISCONNECTED, ERR_TTRPC_PROTOCOL, ERR_TTRPC_STATUS, ERR_ABORTED, ERR_DISPOSED.
 */
import { createConnection, type Socket } from "node:net";
import { VhiveError, messageOf } from "../../shared/errors.js";
import { NoOpLog, type Log } from "../../shared/log.js";
import { socketPathOf } from "./address.js";
import { FrameParser, decodeResponse, oversizeError, requestFrame, type Frame } from "./codec.js";
import type { RequestInit, ResponseOf, ServiceDefinition } from "./service.js";
import { GrpcCode, TtrpcStatusError } from "./status.js";

export type Metadata = Readonly<Record<string, string | readonly string[]>>;

export interface CallOptions {
  /** Give up after this long, and tell the server so; Infinity: no deadline. Default: the client's. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Added to the client's metadata for this call. */
  metadata?: Metadata;
}

export interface ConnectOptions {
  /** The deadline of a call that does not give its own. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Sent with every call (containerd reads its namespace from "containerd-namespace-ttrpc"). */
  metadata?: Metadata;
  log?: Log;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000; // containerd's ttrpc dial timeout
// setTimeout fires at once for delays past 2^31-1 ms; a deadline that far off is no deadline.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Connect to a ttrpc server; rejects with ERR_TTRPC_CONNECT if nothing answers there. */
export async function connectTtrpc(address: string, options: ConnectOptions = {}): Promise<TtrpcClient> {
  const path = socketPathOf(address);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const socket = createConnection({ path, allowHalfOpen: false });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new VhiveError("ERR_TTRPC_CONNECT", `no ttrpc server accepted a connection at ${path} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve();
    });
    const onError = (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        error.code === "ENOENT" ? "there is no socket there" : error.code === "ECONNREFUSED" ? "nobody listens on it" : messageOf(error);
      reject(new VhiveError("ERR_TTRPC_CONNECT", `cannot connect to ttrpc socket ${path}: ${why}`, { cause: error }));
    };
    socket.once("error", onError);
  });
  return new TtrpcClient(socket, address, options);
}

export type ServiceClient<D extends ServiceDefinition> = {
  readonly [K in keyof D["methods"]]: (
    request: RequestInit<D["methods"][K]>,
    options?: CallOptions,
  ) => Promise<ResponseOf<D["methods"][K]>>;
};

interface Pending {
  call: string;
  resolve: (payload: Uint8Array) => void;
  reject: (error: VhiveError) => void;
}

export class TtrpcClient implements AsyncDisposable {
  readonly address: string;
  /** Resolves once the connection is closed, by either side. */
  readonly closed: Promise<void>;
  readonly #socket: Socket;
  readonly #log: Log;
  readonly #timeoutMs: number;
  readonly #metadata: Metadata;
  readonly #parser = new FrameParser();
  readonly #pending = new Map<number, Pending>();
  /** The promise of every call not yet settled, for close() to wait on. */
  readonly #calls = new Set<Promise<Uint8Array>>();
  #nextStreamId = 1;
  /** Why calls fail from now on: set by close()/destroy(), or when the connection drops. */
  #refusal: VhiveError | undefined;
  #closing: Promise<void> | undefined;

  /** Use connectTtrpc. */
  constructor(socket: Socket, address: string, options: ConnectOptions = {}) {
    this.#socket = socket;
    this.address = address;
    this.#log = options.log ?? new NoOpLog();
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#metadata = options.metadata ?? {};
    let socketError: Error | undefined;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (chunk: Buffer) => {
      for (const parsed of this.#parser.push(chunk)) {
        if (parsed.kind === "oversize") this.#settle(parsed.streamId)?.reject(oversizeError(parsed.lengthBytes));
        else this.#onFrame(parsed.frame);
      }
    });
    socket.on("error", (error) => {
      socketError = error;
    });
    socket.once("close", () => {
      const gone = new VhiveError("ERR_TTRPC_DISCONNECTED", `the ttrpc connection to ${address} closed`, { cause: socketError });
      this.#refusal ??= gone;
      for (const [streamId, pending] of this.#pending) {
        this.#pending.delete(streamId);
        pending.reject(new VhiveError("ERR_TTRPC_DISCONNECTED", `${pending.call}: the ttrpc connection to ${address} closed during the call`, { cause: socketError }));
      }
    });
  }

  /** Whether calls fail from now on (closed, destroyed, or the connection dropped). */
  get refusing(): boolean {
    return this.#refusal !== undefined;
  }

  /** Calls in flight. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** One call with an encoded request; resolves with the encoded response. */
  request(service: string, method: string, payload: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    const call = `${service}/${method}`;
    if (this.#refusal) return Promise.reject(this.#refusal);
    if (options.signal?.aborted) return Promise.reject(new VhiveError("ERR_ABORTED", `${call} was cancelled`));
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const hasDeadline = Number.isFinite(timeoutMs) && timeoutMs <= MAX_TIMER_MS;
    const metadata = Object.entries({ ...this.#metadata, ...options.metadata }).flatMap(([key, values]) =>
      (typeof values === "string" ? [values] : values).map((value) => ({ key, value })),
    );
    const streamId = this.#nextStreamId;
    let frame: Buffer;
    try {
      frame = requestFrame(streamId, {
        service,
        method,
        payload,
        timeoutNano: hasDeadline ? Math.round(timeoutMs * 1e6) : 0,
        metadata,
      });
    } catch (error) {
      return Promise.reject(error); // too large to send
    }
    this.#nextStreamId = (streamId + 2) >>> 0; // odd ids: client-initiated streams
    const answer = new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => this.#settle(streamId)?.reject(new VhiveError("ERR_ABORTED", `${call} was cancelled`));
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      this.#pending.set(streamId, {
        call,
        resolve: (answer) => {
          done();
          resolve(answer);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      });
      if (hasDeadline) {
        timer = setTimeout(() => {
          this.#settle(streamId)?.reject(new TtrpcStatusError(GrpcCode.DEADLINE_EXCEEDED, `${call}: no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#socket.write(frame);
    });
    this.#calls.add(answer);
    const forget = () => this.#calls.delete(answer);
    answer.then(forget, forget);
    return answer;
  }

  /** Typed stubs for a service: `client.service(TaskDefinition).state({ id })`. */
  service<D extends ServiceDefinition>(definition: D): ServiceClient<D> {
    const stubs: Record<string, (request: unknown, options?: CallOptions) => Promise<unknown>> = {};
    for (const [key, method] of Object.entries(definition.methods)) {
      stubs[key] = async (request, options) => {
        const { requestType, responseType } = method;
        const answer = await this.request(definition.fullName, method.name, requestType.encode(requestType.fromPartial(request)).finish(), options);
        try {
          return responseType.decode(answer);
        } catch (error) {
          throw new VhiveError("ERR_TTRPC_PROTOCOL", `${definition.fullName}/${method.name}: the answer does not decode as ${responseType.$type}: ${messageOf(error)}`, { cause: error });
        }
      };
    }
    return stubs as ServiceClient<D>;
  }

  /** Refuse new calls, wait for those in flight, then end the connection. */
  close(): Promise<void> {
    this.#refusal ??= new VhiveError("ERR_DISPOSED", `the ttrpc client of ${this.address} is closed`);
    this.#closing ??= (async () => {
      // Each call settles by its answer, its deadline, its signal or the connection's end.
      await Promise.allSettled(this.#calls);
      this.#socket.end();
      await this.closed;
    })();
    return this.#closing;
  }

  /** End the connection now; calls in flight reject with ERR_TTRPC_DISCONNECTED. */
  destroy(): Promise<void> {
    this.#refusal ??= new VhiveError("ERR_DISPOSED", `the ttrpc client of ${this.address} is destroyed`);
    this.#socket.destroy();
    this.#closing ??= this.closed;
    return this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Take a call off the pending set, to settle it; undefined if it is settled already. */
  #settle(streamId: number): Pending | undefined {
    const pending = this.#pending.get(streamId);
    if (pending === undefined) return undefined;
    this.#pending.delete(streamId);
    return pending;
  }

  #onFrame(frame: Frame): void {
    const pending = this.#settle(frame.streamId);
    if (pending === undefined) {
      this.#log.debug("ttrpc: dropping an answer to no call in flight (it timed out?)", { streamId: frame.streamId, type: frame.type });
      return;
    }
    let response;
    try {
      response = decodeResponse(frame);
    } catch (error) {
      pending.reject(error as VhiveError);
      return;
    }
    if (response.status !== undefined && response.status.code !== GrpcCode.OK) {
      pending.reject(TtrpcStatusError.fromStatus(response.status));
    } else {
      pending.resolve(response.payload);
    }
  }
}
