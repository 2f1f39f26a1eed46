/**
 * The invocation timeout: how long one call to a function may take before it fails with
 * ERR_INVOKE_TIMEOUT. Every command that invokes sets it with `--timeout` (the daemon per
 * function at deploy, or per request); the message names the option, so a slow function's user
 * knows what to raise.
 */
import { formatDuration } from "../shared/duration.js";
import { VhiveError } from "../shared/errors.js";

/** The default of `vhive run`, `snapshot restore` and the benches; the daemon's is its own. */
export const DEFAULT_INVOKE_TIMEOUT_MS = 30_000;

/** `what` (a method or a request line) got no reply within `timeoutMs`. */
export function invokeTimeoutError(what: string, timeoutMs: number, cause?: unknown): VhiveError {
  return new VhiveError("ERR_INVOKE_TIMEOUT", `${what} did not answer within ${formatDuration(timeoutMs)} (the invocation timeout, --timeout)`, {
    remedy: "if the function is just slow, give it longer with --timeout (e.g. --timeout 2m); the daemon takes it per function at `vhive deploy` or per `vhive invoke`",
    ...(cause === undefined ? {} : { cause }),
  });
}
