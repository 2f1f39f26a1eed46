import { afterEach, describe, expect, it } from "vitest";
import { createHttpClient, isTransportFailure, type FunctionClient } from "../../../src/invoke/index.js";
import { freeLoopbackPort } from "../../../src/vm/index.js";
import { Cleanups } from "../test-shared/cleanups.js";
import { echo, readyAfterLateStart, rejection, startHttpServer, startSlirpLikeServer, type HttpHandler } from "./fixtures.js";

type Handler = HttpHandler;

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const startServer = (handler: Handler = echo, port = 0) => startHttpServer(cleanups, handler, port);

function client(port: number, path?: string): FunctionClient {
  const created = createHttpClient({ host: "127.0.0.1", port }, path === undefined ? {} : { path });
  cleanups.push(() => created.close());
  return created;
}

describe("HTTP invoke", () => {
  it("sends a GET to the path when data is empty and returns status and body", async () => {
    const port = await startServer();
    const result = await client(port, "/fn?x=1").invoke("");
    expect(result.response).toEqual({ status: 200, body: "GET /fn?x=1 " });
    expect(result.text).toBe("GET /fn?x=1 ");
    expect(result.ms).toBeGreaterThan(0);
  });

  it("POSTs the data as the body to / by default", async () => {
    const port = await startServer();
    const result = await client(port).invoke('{"name":"world"}');
    expect(result.text).toBe('POST / {"name":"world"}');
  });

  it("accepts any 2xx status", async () => {
    const port = await startServer((_request, _body, response) => {
      response.statusCode = 201;
      response.end("created");
    });
    expect((await client(port).invoke("x")).response).toEqual({ status: 201, body: "created" });
  });

  it("rejects ERR_INVOKE with the status and an excerpt of the body on a non-2xx answer", async () => {
    const port = await startServer((_request, _body, response) => {
      response.statusCode = 500;
      response.end(`boom ${"x".repeat(1000)}`);
    });
    const error = await rejection(client(port).invoke("x"));
    expect(error.code).toBe("ERR_INVOKE");
    expect(error.message).toContain("HTTP 500 Internal Server Error: boom xxx");
    expect(error.message.length).toBeLessThan(400);
    expect(isTransportFailure(error)).toBe(false); // the function answered
  });

  it("rejects ERR_INVOKE when nothing listens", async () => {
    const port = await freeLoopbackPort();
    const error = await rejection(client(port).invoke("x"));
    expect(error.code).toBe("ERR_INVOKE");
    expect(error.message).toContain("ECONNREFUSED");
    expect(isTransportFailure(error)).toBe(true);
  });

  it("marks a connection reset mid-request as a transport failure", async () => {
    const port = await startServer((request) => request.socket.destroy());
    const error = await rejection(client(port).invoke("x"));
    expect(error.code).toBe("ERR_INVOKE");
    expect(isTransportFailure(error)).toBe(true);
  });

  it("rejects ERR_INVOKE_TIMEOUT naming the timeout when the answer takes longer than timeoutMs", async () => {
    const port = await startServer(() => {
      // Never answers.
    });
    const error = await rejection(client(port).invoke("x", { timeoutMs: 200 }));
    expect(error.code).toBe("ERR_INVOKE_TIMEOUT");
    expect(error.message).toBe(`POST http://127.0.0.1:${port}/ did not answer within 200 ms (the invocation timeout, --timeout)`);
    const slow = createHttpClient({ host: "127.0.0.1", port }, { invokeTimeoutMs: 300 });
    cleanups.push(() => slow.close());
    expect((await rejection(slow.invoke("x"))).message).toContain("within 300 ms");
  });

  it("rejects ERR_ABORTED when the signal aborts mid-request", async () => {
    const port = await startServer(() => {
      // Never answers.
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await rejection(client(port).invoke("x", { signal: controller.signal }));
    expect(error.code).toBe("ERR_ABORTED");
  });

  it("rejects ERR_ABORTED without a request when the signal is already aborted", async () => {
    let requests = 0;
    const port = await startServer((request, body, response) => {
      requests++;
      echo(request, body, response);
    });
    const error = await rejection(client(port).invoke("x", { signal: AbortSignal.abort() }));
    expect(error.code).toBe("ERR_ABORTED");
    expect(requests).toBe(0);
  });

  it("close is idempotent and later calls reject ERR_DISPOSED", async () => {
    const port = await startServer();
    const fn = client(port);
    fn.close();
    fn.close();
    expect((await rejection(fn.invoke("x"))).code).toBe("ERR_DISPOSED");
    expect((await rejection(fn.waitReady({ timeoutMs: 100 }))).code).toBe("ERR_DISPOSED");
  });
});

describe("HTTP checkRequest", () => {
  it("accepts any string: it is the body", () => {
    expect(() => client(1).checkRequest("{ not json")).not.toThrow();
  });
});

describe("createHttpClient", () => {
  it("throws ERR_VALIDATION for a path not starting with /", () => {
    expect(() => createHttpClient({ host: "127.0.0.1", port: 80 }, { path: "fn" })).toThrow(
      expect.objectContaining({ code: "ERR_VALIDATION" }),
    );
  });
});

describe("HTTP waitReady", () => {
  it("resolves on any HTTP answer to GET /, even an error status", async () => {
    const seen: string[] = [];
    const port = await startServer((request, _body, response) => {
      seen.push(`${request.method} ${request.url}`);
      response.statusCode = 404;
      response.end();
    });
    await client(port, "/fn").waitReady({ timeoutMs: 2000 });
    expect(seen).toEqual(["GET /"]);
  });

  it("resolves within 300 ms of a server that starts listening 500 ms later", async () => {
    const port = await freeLoopbackPort();
    const fn = client(port);
    const { waitedMs, afterListeningMs } = await readyAfterLateStart(fn, () => startServer(echo, port));
    expect(waitedMs).toBeGreaterThanOrEqual(450);
    expect(afterListeningMs).toBeLessThan(300);
    expect((await fn.invoke("late")).text).toBe("POST / late");
  });

  it("rejects ERR_READY_TIMEOUT with the last error when the port accepts TCP but never answers HTTP", async () => {
    const port = await startSlirpLikeServer(cleanups);
    const startedMs = performance.now();
    const error = await rejection(client(port).waitReady({ timeoutMs: 400 }));
    const elapsedMs = performance.now() - startedMs;
    expect(error.code).toBe("ERR_READY_TIMEOUT");
    expect(error.message).toContain("400 ms");
    expect(error.message).toMatch(/last connection error: .*(socket hang up|ECONNRESET)/);
    expect(elapsedMs).toBeGreaterThanOrEqual(390);
    expect(elapsedMs).toBeLessThan(1500);
  });

  it("rounds the durations it reports (a deadline minus now is a fraction of a millisecond)", async () => {
    const port = await startSlirpLikeServer(cleanups);
    const error = await rejection(client(port).waitReady({ timeoutMs: 300.952683 }));
    expect(error.message).toMatch(/within \d+ ms \(timeout 301 ms\)/);
  });

  it("reports the refused connection when nothing listens", async () => {
    const port = await freeLoopbackPort();
    const error = await rejection(client(port).waitReady({ timeoutMs: 200 }));
    expect(error.code).toBe("ERR_READY_TIMEOUT");
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("rejects ERR_ABORTED soon after the signal aborts", async () => {
    const port = await freeLoopbackPort();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const startedMs = performance.now();
    const error = await rejection(client(port).waitReady({ timeoutMs: 5000, signal: controller.signal }));
    expect(error.code).toBe("ERR_ABORTED");
    expect(performance.now() - startedMs).toBeLessThan(1000);
  });

  it("rejects ERR_ABORTED at once when the signal is already aborted", async () => {
    const port = await startServer();
    const error = await rejection(client(port).waitReady({ timeoutMs: 1000, signal: AbortSignal.abort() }));
    expect(error.code).toBe("ERR_ABORTED");
  });
});
