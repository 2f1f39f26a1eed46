/** Waits that end when a signal aborts. */
import { VhiveError } from "./errors.js";

/**
 * `promise`, or ERR_ABORTED ("<what> was cancelled") as soon as `signal` aborts, whichever is
 * first; the listener is dropped either way. `promise` itself is not cancelled.
 */
export async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  const cancelled = () => new VhiveError("ERR_ABORTED", `${what} was cancelled`);
  if (signal.aborted) throw cancelled();
  let onAbort = () => {};
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(cancelled());
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
