/**
 * Which failed calls failed on the way: the connection was refused, reset or dropped before
 * the function answered (gRPC UNAVAILABLE, an HTTP request with no response). Such a failure
 * says nothing about the function's code; it often means its VM is going away, so a caller that
 * owns the VM waits for the VM's own error before it reports one (start/instance.ts).
 *
 * The clients mark their errors here rather than callers reading gRPC statuses or fetch causes.
 */
import type { VhiveError } from "../shared/errors.js";

const transportFailures = new WeakSet<VhiveError>();

/** Mark `error` as a failure on the way to the function; returns it. */
export function asTransportFailure(error: VhiveError): VhiveError {
  transportFailures.add(error);
  return error;
}

/** Whether the call failed before the function answered (connection refused, reset, dropped). */
export function isTransportFailure(error: unknown): boolean {
  return typeof error === "object" && error !== null && transportFailures.has(error as VhiveError);
}
