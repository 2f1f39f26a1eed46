/**
 * HTTP FunctionClient: invokes a function that serves plain HTTP. `invoke` POSTs --data (or
 * GETs when there is none) to one path with Node's built-in fetch; `waitReady` polls GET / until
 * any HTTP response arrives, since slirp's hostfwd accepts TCP before the guest listens.
 *
 * The readiness probe uses node:http with a fresh connection per attempt rather than fetch:
 * Node 20's fetch (undici 6) sometimes never settles when the peer closes the connection right
 * after accepting it, which is exactly what slirp does, and it would reuse pooled connections
 * that say nothing about the guest's current state.
 *
 * Throws: ERR_VALIDATION (createHttpClient), and through FunctionClient ERR_INVOKE,
 * ERR_INVOKE_TIMEOUT, ERR_READY_TIMEOUT, ERR_ABORTED, ERR_DISPOSED.
 */
import { get as httpGet } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { formatDuration } from "../shared/duration.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { FunctionClient, InvokeOptions, InvokeResult, WaitReadyOptions } from "./index.js";
import { DEFAULT_INVOKE_TIMEOUT_MS, invokeTimeoutError } from "./timeout.js";
import { asTransportFailure } from "./transport.js";

export interface HttpClientOptions {
  /** Path (and query) that invoke requests; default "/". */
  path?: string;
  /** Deadline of a call that names none; default DEFAULT_INVOKE_TIMEOUT_MS. */
  invokeTimeoutMs?: number;
}

const DEFAULT_RETRY_MS = 50;
/** How much of a non-2xx body goes into the error message, in characters. */
const BODY_EXCERPT_CHARS = 200;

/**
 * A FunctionClient for a plain-HTTP function at `endpoint`.
 *
 * Throws ERR_VALIDATION when `options.path` does not start with "/" or the URL is invalid.
 */
export function createHttpClient(endpoint: { host: string; port: number }, options: HttpClientOptions = {}): FunctionClient {
  const path = options.path ?? "/";
  if (!path.startsWith("/")) throw new VhiveError("ERR_VALIDATION", `HTTP path "${path}" must start with "/"`);
  const host = endpoint.host.includes(":") && !endpoint.host.startsWith("[") ? `[${endpoint.host}]` : endpoint.host;
  const origin = `http://${host}:${endpoint.port}`;
  let url: URL;
  let rootUrl: URL;
  try {
    url = new URL(path, origin);
    rootUrl = new URL("/", origin);
  } catch (error) {
    throw new VhiveError("ERR_VALIDATION", `invalid HTTP endpoint ${origin}${path}: ${messageOf(error)}`, { cause: error });
  }
  return new HttpFunctionClient(url, rootUrl, options.invokeTimeoutMs ?? DEFAULT_INVOKE_TIMEOUT_MS);
}

class HttpFunctionClient implements FunctionClient {
  readonly #url: URL;
  readonly #rootUrl: URL;
  readonly #invokeTimeoutMs: number;
  #closed = false;

  constructor(url: URL, rootUrl: URL, invokeTimeoutMs: number) {
    this.#url = url;
    this.#rootUrl = rootUrl;
    this.#invokeTimeoutMs = invokeTimeoutMs;
  }

  async waitReady({ timeoutMs, signal, retryMs = DEFAULT_RETRY_MS }: WaitReadyOptions): Promise<void> {
    this.#checkOpen("waitReady");
    const what = `waiting for HTTP at ${this.#rootUrl.host}`;
    if (signal?.aborted) throw abortedError(what, signal.reason);
    const startedMs = performance.now();
    const deadlineMs = startedMs + timeoutMs;
    let lastError: string | undefined;
    for (;;) {
      if (this.#closed) throw abortedError(`${what} (client closed)`);
      const attemptMs = performance.now();
      const remainingMs = deadlineMs - attemptMs;
      if (remainingMs <= 0) break;
      const limit = limitSignal(signal, remainingMs);
      try {
        await probe(this.#rootUrl, limit.signal);
        return;
      } catch (error) {
        if (signal?.aborted) throw abortedError(what, error);
        // An attempt cut off by the deadline says less than a failure before it.
        if (!limit.timedOut) lastError = describeError(error);
        else lastError ??= `no HTTP response within ${formatDuration(remainingMs)}`;
      } finally {
        limit.dispose();
      }
      // Attempts start retryMs apart; one that failed slowly is retried at once.
      const waitMs = Math.min(deadlineMs, attemptMs + retryMs) - performance.now();
      if (waitMs > 0) await sleep(waitMs, undefined, { signal }).catch(() => {}); // cancelled: checked next
      if (signal?.aborted) throw abortedError(what, signal.reason);
    }
    const waitedMs = performance.now() - startedMs;
    throw new VhiveError(
      "ERR_READY_TIMEOUT",
      `no HTTP response to GET ${this.#rootUrl.href} within ${formatDuration(waitedMs)} (timeout ${formatDuration(timeoutMs)}); ` +
        `last connection error: ${lastError ?? "none (no attempt finished)"}`,
      {
        remedy:
          "Check that the function listens on the guest port forwarded to this host port and speaks HTTP; " +
          "if it is just slow to start, raise the readiness timeout.",
      },
    );
  }

  async invoke(data: string, { timeoutMs = this.#invokeTimeoutMs, signal }: InvokeOptions = {}): Promise<InvokeResult> {
    this.#checkOpen("invoke");
    const method = data.length > 0 ? "POST" : "GET";
    const what = `${method} ${this.#url.href}`;
    if (signal?.aborted) throw abortedError(what, signal.reason);
    const limit = limitSignal(signal, timeoutMs);
    const startedMs = performance.now();
    let status: number;
    let statusText: string;
    let body: string;
    try {
      const response = await fetch(this.#url, {
        method,
        body: method === "POST" ? data : undefined,
        signal: limit.signal,
      });
      status = response.status;
      statusText = response.statusText;
      body = await response.text();
    } catch (error) {
      if (signal?.aborted) throw abortedError(what, error);
      if (limit.timedOut) throw invokeTimeoutError(what, timeoutMs, error);
      // No response at all: the connection was refused, reset or dropped.
      throw asTransportFailure(new VhiveError("ERR_INVOKE", `${what} failed: ${describeError(error)}`, { cause: error }));
    } finally {
      limit.dispose();
    }
    const ms = performance.now() - startedMs;
    if (status < 200 || status > 299) {
      const excerpt = body.length > BODY_EXCERPT_CHARS ? `${body.slice(0, BODY_EXCERPT_CHARS)}...` : body;
      throw new VhiveError(
        "ERR_INVOKE",
        `${what} failed: HTTP ${status}${statusText ? ` ${statusText}` : ""}: ${excerpt.trim() || "(empty body)"}`,
      );
    }
    return { response: { status, body }, text: body, ms };
  }

  checkRequest(): void {
    // Any string is a body (the empty one: a GET).
  }

  close(): void {
    // fetch's connections belong to Node's global pool and the probe keeps none, so there is
    // nothing to release; closing only refuses further use.
    this.#closed = true;
  }

  #checkOpen(operation: string): void {
    if (this.#closed) {
      throw new VhiveError("ERR_DISPOSED", `${operation} called on a closed HTTP client for ${this.#url.host}`);
    }
  }
}

/** Resolves on any HTTP response to GET `url` over a new connection; the body is discarded. */
function probe(url: URL, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const request = httpGet(url, { agent: false, signal }, (response) => {
      resolve();
      response.destroy();
    });
    // `on`, not `once`: destroying the socket after the response may emit a late error.
    request.on("error", reject);
  });
}

interface Limit {
  /** Aborts when the caller's signal does or when the time runs out. */
  readonly signal: AbortSignal;
  readonly timedOut: boolean;
  dispose(): void;
}

function limitSignal(outer: AbortSignal | undefined, timeoutMs: number): Limit {
  const controller = new AbortController();
  let timedOut = false;
  // setTimeout fires at once for delays beyond 2^31-1 ms; clamp to "practically never".
  const timer = setTimeout(
    () => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${formatDuration(timeoutMs)}`));
    },
    Math.min(Math.max(0, timeoutMs), 2 ** 31 - 1),
  );
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    dispose() {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * fetch rejects with a bare "fetch failed" and hides the reason in `cause` (an Error, an
 * AggregateError from trying several addresses, or a string such as "bad port").
 */
function describeError(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(messageOf).join("; ");
  if (cause instanceof Error) return cause.message || cause.name;
  if (cause === "bad port") return "fetch refuses this port (it is on the Fetch standard's list of blocked ports)";
  if (typeof cause === "string" && cause !== "") return cause;
  return messageOf(error);
}

function abortedError(what: string, cause?: unknown): VhiveError {
  return new VhiveError("ERR_ABORTED", `${what} was cancelled`, cause === undefined ? {} : { cause });
}
