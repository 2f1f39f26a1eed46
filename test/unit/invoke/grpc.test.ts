import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { existsSync } from "node:fs";
import {
  Server,
  ServerCredentials,
  status,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { afterEach, describe, expect, it } from "vitest";
import {
  DEFAULT_GRPC_METHOD,
  createGrpcClient,
  defaultProtoPath,
  isTransportFailure,
  requestFromData,
  type FunctionClient,
  type MessageShape,
} from "../../../src/invoke/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { freeLoopbackPort } from "../../../src/vm/index.js";
import { Cleanups } from "../test-shared/cleanups.js";
import { greet, readyAfterLateStart, rejection, startGreeter as startGreeterServer, startSlirpLikeServer, type SayHello } from "./fixtures.js";

const HELLO_REQUEST: MessageShape = {
  typeName: "helloworld.HelloRequest",
  fields: [{ name: "name", type: "string", repeated: false }],
};

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const startGreeter = (sayHello: SayHello = greet, port = 0) => startGreeterServer(cleanups, sayHello, port);

function client(port: number, method = DEFAULT_GRPC_METHOD, protoPath = defaultProtoPath()): FunctionClient {
  const created = createGrpcClient({ host: "127.0.0.1", port }, { protoPath, method });
  cleanups.push(() => created.close());
  return created;
}

function thrown(fn: () => unknown): VhiveError {
  try {
    fn();
  } catch (error) {
    if (error instanceof VhiveError) return error;
    throw error;
  }
  throw new Error("expected a throw");
}

describe("defaultProtoPath", () => {
  it("points at the repository's helloworld.proto", () => {
    expect(defaultProtoPath()).toMatch(/protos[\\/]helloworld\.proto$/);
    expect(existsSync(defaultProtoPath())).toBe(true);
  });
});

describe("requestFromData", () => {
  it("puts plain text into the request's only string field", () => {
    expect(requestFromData("world", HELLO_REQUEST)).toEqual({ name: "world" });
  });

  it("uses a JSON object as the message", () => {
    expect(requestFromData('{"name":"json"}', HELLO_REQUEST)).toEqual({ name: "json" });
  });

  it("treats JSON that is not an object as plain text", () => {
    expect(requestFromData('"quoted"', HELLO_REQUEST)).toEqual({ name: '"quoted"' });
    expect(requestFromData("[1,2]", HELLO_REQUEST)).toEqual({ name: "[1,2]" });
    expect(requestFromData("42", HELLO_REQUEST)).toEqual({ name: "42" });
  });

  it("rejects JSON keys that are not fields of the request type, listing the fields", () => {
    const error = thrown(() => requestFromData('{"nmae":"typo"}', HELLO_REQUEST));
    expect(error.code).toBe("ERR_VALIDATION");
    expect(error.message).toContain('"nmae"');
    expect(error.message).toContain("name: string");
  });

  it("rejects plain text for a request without a single string field, explaining its fields", () => {
    const shape: MessageShape = {
      typeName: "demo.Order",
      fields: [
        { name: "item", type: "string", repeated: false },
        { name: "count", type: "int32", repeated: false },
      ],
    };
    const error = thrown(() => requestFromData("two apples", shape));
    expect(error.code).toBe("ERR_VALIDATION");
    expect(error.message).toContain("--data must be a JSON object for demo.Order");
    expect(error.message).toContain("item: string, count: int32");
    expect(requestFromData('{"item":"apple","count":2}', shape)).toEqual({ item: "apple", count: 2 });
  });

  it("rejects a JSON value that does not fit its field's type, which protobuf.js would coerce silently", () => {
    const shape: MessageShape = {
      typeName: "demo.Order",
      fields: [
        { name: "item", type: "string", repeated: false },
        { name: "count", type: "int32", repeated: false },
        { name: "big", type: "int64", repeated: false },
        { name: "tags", type: "string", repeated: true },
        { name: "gift", type: "bool", repeated: false },
        { name: "price", type: "double", repeated: false },
        { name: "address", type: "demo.Address", repeated: false },
      ],
    };
    const error = thrown(() => requestFromData('{"item":"apple","count":"two"}', shape));
    expect(error.code).toBe("ERR_VALIDATION");
    expect(error.message).toBe('--data field "count" is "two", but demo.Order.count is int32: expected an integer');
    expect(error.remedy).toContain("item: string, count: int32");
    expect(thrown(() => requestFromData('{"tags":"a"}', shape)).message).toContain("expected an array");
    expect(thrown(() => requestFromData('{"tags":["a",1]}', shape)).message).toContain("expected an array whose items are each a string");
    expect(thrown(() => requestFromData('{"gift":"yes"}', shape)).message).toContain("expected true or false");
    expect(thrown(() => requestFromData('{"count":2.5}', shape)).message).toContain("expected an integer");
    expect(thrown(() => requestFromData('{"address":true}', shape)).message).toContain("expected an object (a message) or an enum value");
    const fits = '{"item":"apple","count":2,"big":"9007199254740993","tags":["red"],"gift":false,"price":1.5,"address":{"city":"x"}}';
    expect(requestFromData(fits, shape)).toMatchObject({ count: 2, big: "9007199254740993" });
  });
});

describe("checkRequest", () => {
  it("checks data against the request message without calling (nothing listens)", async () => {
    const greeter = client(await freeLoopbackPort());
    expect(() => greeter.checkRequest("world")).not.toThrow();
    expect(thrown(() => greeter.checkRequest('{"nmae":"typo"}')).code).toBe("ERR_VALIDATION");
  });
});

describe("createGrpcClient", () => {
  it("throws ERR_PROTO_INVALID naming the file when the proto does not exist", () => {
    const error = thrown(() =>
      createGrpcClient({ host: "127.0.0.1", port: 1 }, { protoPath: "/nonexistent/x.proto", method: DEFAULT_GRPC_METHOD }),
    );
    expect(error.code).toBe("ERR_PROTO_INVALID");
    expect(error.message).toContain("/nonexistent/x.proto");
  });

  it("throws ERR_PROTO_INVALID when the proto does not parse", async () => {
    await using dir = await makeTempDir("invoke-test");
    const protoPath = join(dir.path, "broken.proto");
    await writeFile(protoPath, 'syntax = "proto3"; message {');
    const error = thrown(() => createGrpcClient({ host: "127.0.0.1", port: 1 }, { protoPath, method: "a.B/C" }));
    expect(error.code).toBe("ERR_PROTO_INVALID");
    expect(error.message).toContain(protoPath);
  });

  it.each(["SayHello", "helloworld.Greeter.SayHello", "helloworld.Greeter/Say/Hello", "", "helloworld.Greeter/"])(
    "throws ERR_PROTO_INVALID for the malformed method %j",
    (method) => {
      const error = thrown(() => createGrpcClient({ host: "127.0.0.1", port: 1 }, { protoPath: defaultProtoPath(), method }));
      expect(error.code).toBe("ERR_PROTO_INVALID");
      expect(error.message).toContain("package.Service/Method");
    },
  );

  it("throws ERR_PROTO_INVALID listing the methods the proto defines when the method is unknown", () => {
    for (const method of ["helloworld.Greeter/SayGoodbye", "helloworld.Farewell/SayHello", "helloworld.HelloRequest/SayHello"]) {
      const error = thrown(() => createGrpcClient({ host: "127.0.0.1", port: 1 }, { protoPath: defaultProtoPath(), method }));
      expect(error.code).toBe("ERR_PROTO_INVALID");
      expect(error.message).toContain(defaultProtoPath());
      expect(error.message).toContain(`does not define ${method}`);
      expect(error.message).toContain("it defines helloworld.Greeter/SayHello");
    }
  });

  it("throws ERR_PROTO_INVALID for a streaming method", async () => {
    await using dir = await makeTempDir("invoke-test");
    const protoPath = join(dir.path, "stream.proto");
    await writeFile(
      protoPath,
      'syntax = "proto3"; package s; message M { string v = 1; } service S { rpc Watch (M) returns (stream M); }',
    );
    const error = thrown(() => createGrpcClient({ host: "127.0.0.1", port: 1 }, { protoPath, method: "s.S/Watch" }));
    expect(error.code).toBe("ERR_PROTO_INVALID");
    expect(error.message).toContain("server-streaming");
  });
});

describe("gRPC invoke", () => {
  it("sends plain data as the name and returns the greeting as response and text", async () => {
    const port = await startGreeter();
    const result = await client(port).invoke("world");
    expect(result.response).toEqual({ message: "Hello, world!" });
    expect(result.text).toBe("Hello, world!");
    expect(result.ms).toBeGreaterThan(0);
  });

  it("summarizes a reply of several fields as JSON in the .proto's field order", async () => {
    await using dir = await makeTempDir("invoke-test");
    const protoPath = join(dir.path, "count.proto");
    await writeFile(
      protoPath,
      `syntax = "proto3"; package count; service Counter { rpc Count (CountRequest) returns (CountReply) {} }
       message CountRequest { string text = 1; int32 top = 2; } message CountReply { int32 words = 1; repeated string top_words = 2; }`,
    );
    const pkg = loadSync(protoPath, { keepCase: true });
    const server = new Server();
    server.addService(pkg["count.Counter"] as ServiceDefinition, {
      Count: (call: ServerUnaryCall<{ text: string; top: number }, unknown>, callback: sendUnaryData<unknown>) =>
        callback(null, { words: call.request.text.split(" ").length, top_words: call.request.text.split(" ").slice(0, call.request.top) }),
    });
    cleanups.push(() => server.forceShutdown());
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    const result = await client(port, "count.Counter/Count", protoPath).invoke('{"text": "a b c", "top": 2}');
    expect(result.text).toBe('{"words":3,"top_words":["a","b"]}');
    expect(result.response).toEqual({ words: 3, top_words: ["a", "b"] });
  });

  it("sends JSON object data as the request message", async () => {
    const port = await startGreeter();
    const result = await client(port).invoke('{"name":"json"}');
    expect(result.text).toBe("Hello, json!");
  });

  it("maps an error status from the server to ERR_INVOKE naming the method and status", async () => {
    const port = await startGreeter((_call, callback) => callback({ code: status.NOT_FOUND, details: "no such greeting" }));
    const error = await rejection(client(port).invoke("world"));
    expect(error.code).toBe("ERR_INVOKE");
    expect(error.message).toBe("helloworld.Greeter/SayHello failed: NOT_FOUND: no such greeting");
    expect(error.cause).toMatchObject({ code: status.NOT_FOUND });
    expect(isTransportFailure(error)).toBe(false); // the function answered

  });

  it("on UNIMPLEMENTED, names the method called, the others its proto defines, and --method/--proto", async () => {
    // The server is helloworld's Greeter; the client calls a service of another proto.
    const port = await startGreeter();
    await using dir = await makeTempDir("invoke-test");
    const protoPath = join(dir.path, "shop.proto");
    await writeFile(
      protoPath,
      `syntax = "proto3"; package shop;
       service Shop { rpc Order (OrderRequest) returns (OrderReply) {} rpc Cancel (OrderRequest) returns (OrderReply) {} }
       message OrderRequest { string item = 1; } message OrderReply { string receipt = 1; }`,
    );
    const error = await rejection(client(port, "shop.Shop/Order", protoPath).invoke("apple"));
    expect(error.code).toBe("ERR_INVOKE");
    expect(error.message).toMatch(/^shop\.Shop\/Order failed: UNIMPLEMENTED: the function does not serve shop\.Shop\/Order \(.*\); shop\.proto also defines shop\.Shop\/Cancel$/);
    expect(error.remedy).toContain("--method package.Service/Method with a --proto that defines it");
    expect(error.remedy).toContain("the recipe's method and proto");
    expect(isTransportFailure(error)).toBe(false);
    const soloPath = join(dir.path, "solo.proto");
    await writeFile(soloPath, `syntax = "proto3"; package solo; service Solo { rpc Run (R) returns (R) {} } message R { string s = 1; }`);
    const solo = await rejection(client(port, "solo.Solo/Run", soloPath).invoke("x"));
    expect(solo.message).toMatch(/; solo\.proto defines no other method$/);
  });

  it("fails with ERR_INVOKE_TIMEOUT naming the timeout and --timeout when the reply takes longer than timeoutMs", async () => {
    const port = await startGreeter(() => {
      // Never answers.
    });
    const error = await rejection(client(port).invoke("world", { timeoutMs: 200 }));
    expect(error.code).toBe("ERR_INVOKE_TIMEOUT");
    expect(error.message).toBe("helloworld.Greeter/SayHello did not answer within 200 ms (the invocation timeout, --timeout)");
    expect(error.remedy).toContain("--timeout");
    expect(error.cause).toMatchObject({ code: status.DEADLINE_EXCEEDED });
  });

  it("a call that names no timeout gets the client's", async () => {
    const port = await startGreeter(() => {
      // Never answers.
    });
    const slow = createGrpcClient({ host: "127.0.0.1", port }, { protoPath: defaultProtoPath(), method: DEFAULT_GRPC_METHOD }, { invokeTimeoutMs: 1250 });
    cleanups.push(() => slow.close());
    expect((await rejection(slow.invoke("world"))).message).toContain("within 1.3 s");
  });

  it("cancels the call and rejects ERR_ABORTED when the signal aborts", async () => {
    let cancelled = false;
    const port = await startGreeter((call) => call.on("cancelled", () => (cancelled = true)));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await rejection(client(port).invoke("world", { signal: controller.signal }));
    expect(error.code).toBe("ERR_ABORTED");
    await expect.poll(() => cancelled).toBe(true);
  });

  it("rejects ERR_ABORTED without calling when the signal is already aborted", async () => {
    let calls = 0;
    const port = await startGreeter((call, callback) => {
      calls++;
      greet(call, callback);
    });
    const error = await rejection(client(port).invoke("world", { signal: AbortSignal.abort() }));
    expect(error.code).toBe("ERR_ABORTED");
    expect(calls).toBe(0);
  });

  it("fails with ERR_INVOKE UNAVAILABLE when nothing listens", async () => {
    const port = await freeLoopbackPort();
    const error = await rejection(client(port).invoke("world", { timeoutMs: 2000 }));
    expect(error.code).toBe("ERR_INVOKE");
    expect(error.message).toContain("UNAVAILABLE");
    expect(isTransportFailure(error)).toBe(true);
  });

  it("close is idempotent and later calls reject ERR_DISPOSED", async () => {
    const port = await startGreeter();
    const greeter = client(port);
    greeter.close();
    greeter.close();
    expect((await rejection(greeter.invoke("world"))).code).toBe("ERR_DISPOSED");
    expect((await rejection(greeter.waitReady({ timeoutMs: 100 }))).code).toBe("ERR_DISPOSED");
  });
});

describe("gRPC waitReady", () => {
  it("resolves at once when the server already listens", async () => {
    const port = await startGreeter();
    const greeter = client(port);
    await greeter.waitReady({ timeoutMs: 2000 });
    expect((await greeter.invoke("again")).text).toBe("Hello, again!");
  });

  it("resolves within 300 ms of a server that starts listening 500 ms later", async () => {
    const port = await freeLoopbackPort();
    const greeter = client(port);
    const { waitedMs, afterListeningMs } = await readyAfterLateStart(greeter, () => startGreeter(greet, port));
    expect(waitedMs).toBeGreaterThanOrEqual(450);
    expect(afterListeningMs).toBeLessThan(300);
    expect((await greeter.invoke("late")).text).toBe("Hello, late!");
  });

  it("rejects ERR_READY_TIMEOUT when the port accepts TCP but no HTTP/2 server answers", async () => {
    const port = await startSlirpLikeServer(cleanups);
    const startedMs = performance.now();
    const error = await rejection(client(port).waitReady({ timeoutMs: 400 }));
    const elapsedMs = performance.now() - startedMs;
    expect(error.code).toBe("ERR_READY_TIMEOUT");
    expect(error.message).toContain("400 ms");
    expect(error.message).toContain("last connection error: the connection was closed before the HTTP/2 handshake");
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
    const port = await startGreeter();
    const error = await rejection(client(port).waitReady({ timeoutMs: 1000, signal: AbortSignal.abort() }));
    expect(error.code).toBe("ERR_ABORTED");
  });

  it("rejects ERR_ABORTED when the client is closed while waiting", async () => {
    const port = await freeLoopbackPort();
    const greeter = client(port);
    const waiting = rejection(greeter.waitReady({ timeoutMs: 5000 }));
    setTimeout(() => greeter.close(), 100);
    expect((await waiting).code).toBe("ERR_ABORTED");
  });

  it("rebuilds a channel made with a slower retryMs so the faster one applies", async () => {
    const port = await freeLoopbackPort();
    const greeter = client(port);
    // The first wait builds the channel with a 2 s reconnect backoff.
    expect((await rejection(greeter.waitReady({ timeoutMs: 100, retryMs: 2000 }))).code).toBe("ERR_READY_TIMEOUT");
    const listening = new Promise<number>((resolve, reject) =>
      setTimeout(() => startGreeter(greet, port).then(() => resolve(performance.now()), reject), 300),
    );
    await greeter.waitReady({ timeoutMs: 5000, retryMs: 20 });
    expect(performance.now() - (await listening)).toBeLessThan(200);
  });
});
