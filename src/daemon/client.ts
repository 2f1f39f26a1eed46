/**
 * The CLI's side of the API: JSON over fetch to VHIVE_URL, with VHIVE_TOKEN as a bearer token.
 * An error answer becomes the VhiveError it describes (same code, message, remedy); a daemon
 * that cannot be reached is ERR_DAEMON_UNREACHABLE.
 */
import { ERROR_CODES, VhiveError, messageOf, type VhiveErrorCode } from "../shared/errors.js";
import { DEFAULT_LISTEN } from "./daemon.js";

export const DEFAULT_URL = `http://${DEFAULT_LISTEN}`;

export interface ClientOptions {
  url: string;
  token?: string;
  signal?: AbortSignal;
}

/** Read the environment once, at the edge. */
export function clientOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): { url: string; token?: string } {
  return { url: env.VHIVE_URL || DEFAULT_URL, token: env.VHIVE_TOKEN || undefined };
}

export class DaemonClient {
  readonly url: string;
  readonly #token: string | undefined;
  readonly #signal: AbortSignal | undefined;

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#token = options.token;
    this.#signal = options.signal;
  }

  async request<T>(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    let response: Response;
    try {
      response = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: this.#signal });
    } catch (error) {
      if (this.#signal?.aborted) throw new VhiveError("ERR_ABORTED", `${method} ${path} was cancelled`);
      throw new VhiveError("ERR_DAEMON_UNREACHABLE", `cannot reach the vhive daemon at ${this.url}: ${messageOf((error as Error).cause ?? error)}`, {
        remedy: "start it with `vhive serve`, or set VHIVE_URL to the daemon's address",
        cause: error,
      });
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (response.ok) return json as T;
    const error = (json ?? {}) as { code?: string; message?: string; remedy?: string; details?: string };
    const code = error.code && error.code in ERROR_CODES ? (error.code as VhiveErrorCode) : "ERR_INVOKE";
    throw new VhiveError(code, error.message ?? `the daemon answered ${response.status}: ${text.slice(0, 200)}`, { remedy: error.remedy, details: error.details });
  }
}
