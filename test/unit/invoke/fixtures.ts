/**
 * Pieces the invoke test files (and the load generator's) use: a gRPC Greeter and an HTTP
 * server on loopback, a slirp-like server, rejections.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { Server, ServerCredentials, type ServerUnaryCall, type ServiceDefinition, type sendUnaryData } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { defaultProtoPath, type FunctionClient } from "../../../src/invoke/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import type { Cleanups } from "../test-shared/cleanups.js";

export type SayHello = (call: ServerUnaryCall<{ name: string }, unknown>, callback: sendUnaryData<unknown>) => void;

export const greet: SayHello = (call, callback) => callback(null, { message: `Hello, ${call.request.name}!` });

/** A Greeter server on 127.0.0.1 (port 0: any free port), implementing SayHello with `sayHello`. */
export async function startGreeter(cleanups: Cleanups, sayHello: SayHello = greet, port = 0): Promise<number> {
  const pkg = loadSync(defaultProtoPath(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const server = new Server();
  server.addService(pkg["helloworld.Greeter"] as ServiceDefinition, { SayHello: sayHello });
  cleanups.push(() => server.forceShutdown());
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
}

export type HttpHandler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

/** Answers "<method> <url> <body>" with 200. */
export const echo: HttpHandler = (request, body, response) => response.end(`${request.method} ${request.url} ${body}`);

/** An HTTP server on 127.0.0.1 (port 0: any free port) that hands each request and its body to `handler`. */
export async function startHttpServer(cleanups: Cleanups, handler: HttpHandler = echo, port = 0): Promise<number> {
  const server = createHttpServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => handler(request, body, response));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  cleanups.push(() => {
    // fetch keeps connections alive; close() alone would wait for them.
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

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
