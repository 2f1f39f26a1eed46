/** Pieces both invoke test files use: cleanup, free ports, a slirp-like server, rejections. */
import { createServer, type AddressInfo } from "node:net";
import type { FunctionClient } from "../../../src/invoke/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import type { Cleanups } from "../test-shared/cleanups.js";


/** Accepts every TCP connection and closes it at once, as slirp's hostfwd does while nothing listens in the guest. */
export async function startSlirpLikeServer(cleanups: Cleanups): Promise<number> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** The VhiveError a promise rejects with (any other rejection, or none, fails the test). */
export async function rejection(promise: Promise<unknown>): Promise<VhiveError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VhiveError) return error;
    throw error;
  }
  throw new Error("expected the promise to reject");
}

/**
 * waitReady against a server that `start` starts 500 ms later: how long waitReady took in all,
 * and how long after the server listened it resolved.
 */
export async function readyAfterLateStart(client: FunctionClient, start: () => Promise<unknown>): Promise<{ waitedMs: number; afterListeningMs: number }> {
  const startedMs = performance.now();
  let listeningMs = Number.NaN;
  const server = new Promise<void>((resolve, reject) =>
    setTimeout(() => {
      start().then(() => {
        listeningMs = performance.now();
        resolve();
      }, reject);
    }, 500),
  );
  await client.waitReady({ timeoutMs: 5000 });
  const readyMs = performance.now();
  await server;
  return { waitedMs: readyMs - startedMs, afterListeningMs: readyMs - listeningMs };
}
