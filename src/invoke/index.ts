/**
 * Calling a function that runs inside a microVM. A function speaks either gRPC (vSwarm's
 * `helloworld.Greeter/SayHello`, or any unary method of a .proto given at run time) or plain
 * HTTP; both sit behind one FunctionClient so the orchestrator, CLI and benchmarks need not
 * care which.
 *
 * Readiness is protocol-level on purpose: QEMU's user-mode network (slirp hostfwd) accepts
 * every TCP connection on the host port even before anything listens in the guest, so a TCP
 * connect proves nothing. gRPC waits for an HTTP/2 handshake, HTTP for any HTTP response.
 *
 * This is the only module outsiders import; the shared types live here and the two
 * implementations import them (type-only, so the cycle is erased at run time).
 */

export type Protocol = "grpc" | "http";

export interface InvokeResult {
  /**
   * The decoded reply. gRPC: the reply message as a plain object (proto-loader options
   * keepCase, longs as String, enums as String, defaults, oneofs). HTTP: `{ status, body }`.
   */
  response: Record<string, unknown>;
  /**
   * A human summary. gRPC: when the reply type's only field is a string, that string, else the
   * reply as JSON, its fields in the .proto's order. HTTP: the body text.
   */
  text: string;
  /** Wall time of the call itself in ms (performance.now based; excludes request encoding). */
  ms: number;
}

export interface WaitReadyOptions {
  /** How long to keep trying before rejecting with ERR_READY_TIMEOUT, in ms. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Pause between connection attempts in ms; default 50. */
  retryMs?: number;
}

export interface InvokeOptions {
  /** Deadline of the call in ms; default the client's, else DEFAULT_INVOKE_TIMEOUT_MS (30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface FunctionClient {
  /**
   * Resolves once the function answers at the protocol level (gRPC: the channel reaches READY,
   * i.e. an HTTP/2 handshake with the server succeeded; HTTP: any HTTP response to GET /).
   * Retries about every `retryMs` until `timeoutMs`.
   *
   * Rejects ERR_READY_TIMEOUT (the message says how long it waited and the last connection
   * error), ERR_ABORTED if `signal` aborts or the client is closed meanwhile, ERR_DISPOSED if
   * called after close().
   */
  waitReady(options: WaitReadyOptions): Promise<void>;
  /**
   * Calls the function once with `data` (for gRPC see requestFromData; for HTTP the POST body,
   * or a GET when empty).
   *
   * Rejects ERR_VALIDATION (gRPC: `data` does not fit the request type), ERR_INVOKE (the call
   * failed or HTTP answered non-2xx; isTransportFailure tells a connection that failed before
   * any answer), ERR_INVOKE_TIMEOUT (no reply within the timeout), ERR_ABORTED, ERR_DISPOSED.
   */
  invoke(data: string, options?: InvokeOptions): Promise<InvokeResult>;
  /**
   * Checks `data` as invoke would, without calling, so bad data costs no boot: for gRPC, that it
   * makes a request message (see requestFromData); for HTTP any string is a body. Throws
   * ERR_VALIDATION.
   */
  checkRequest(data: string): void;
  /** Releases connections; calls already in flight finish. Idempotent. */
  close(): void;
}

export {
  DEFAULT_GRPC_METHOD,
  createGrpcClient,
  defaultProtoPath,
  requestFromData,
  type FieldShape,
  type GrpcTarget,
  type MessageShape,
} from "./grpc.js";
export { createHttpClient, type HttpClientOptions } from "./http.js";
export { isTransportFailure } from "./transport.js";
export { DEFAULT_INVOKE_TIMEOUT_MS } from "./timeout.js";
export { parseFunctionAddress, addressClient, type FunctionAddress, type AddressClientOptions } from "./address.js";
