import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp, DaemonMetrics, isLoopback, parseListen } from "../../../src/daemon/index.js";
import { Functions, MemoryBudget } from "../../../src/orchestrator/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { Store } from "../../../src/store/index.js";
import { FakeStarter } from "../orchestrator/fake-starter.js";
import { Cleanups } from "../test-shared/cleanups.js";

const IMAGE_ID = "b".repeat(64);
const cleanup = new Cleanups();
afterEach(() => cleanup.run());

async function daemon(options: { token?: string; budgetMib?: number } = {}): Promise<{ app: FastifyInstance; starter: FakeStarter; functions: Functions; store: Store }> {
  const store = Store.open(":memory:");
  const starter = new FakeStarter();
  const metrics = new DaemonMetrics();
  const functions = new Functions({
    store,
    starter,
    budget: new MemoryBudget(options.budgetMib ?? 4096),
    images: {
      resolve: async (ref) => {
        if (ref !== "helloworld") throw new VhiveError("ERR_IMAGE_NOT_FOUND", `no image named ${ref}`);
        return { id: IMAGE_ID, name: "helloworld", memMib: undefined };
      },
    },
    log: new NoOpLog(),
    observer: metrics,
    pool: { queueTimeoutMs: 1000 },
  });
  metrics.bind(functions);
  const app = await buildApp({ functions, metrics, log: new NoOpLog(), token: options.token, snapshots: async () => [{ id: "s1", workingSet: null }] });
  cleanup.push(async () => {
    await app.close();
    await functions.destroy();
    store.close();
  });
  return { app, starter, functions, store };
}

const deployHello = (app: FastifyInstance, body: Record<string, unknown> = {}) =>
  app.inject({ method: "PUT", url: "/functions/hello", payload: { image: "helloworld", keepaliveMs: 2000, ...body } });

describe("daemon API", () => {
  it("deploys a function with defaults filled in, lists it, gets it, and a second PUT updates it", async () => {
    const { app } = await daemon();
    const created = await deployHello(app);
    expect(created.statusCode).toBe(201);
    expect(created.json().function).toMatchObject({ name: "hello", imageRef: "helloworld", imageId: IMAGE_ID, memMib: 256, vcpus: 1, start: "reap", keepaliveMs: 2000, minInstances: 0, concurrency: 1 });
    const updated = await deployHello(app, { start: "boot", maxInstances: 3 });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().function).toMatchObject({ start: "boot", maxInstances: 3 });
    expect((await app.inject({ method: "GET", url: "/functions" })).json().functions.map((f: { name: string }) => f.name)).toEqual(["hello"]);
    expect((await app.inject({ method: "GET", url: "/functions/hello" })).json()).toMatchObject({ function: { name: "hello" }, instances: [], queueLength: 0 });
  });

  it("deploys with a keep-alive policy, shows its state, and lists the lifetimes of the function's instances", async () => {
    const { app } = await daemon();
    const fixed = await deployHello(app);
    expect(fixed.json().function).toMatchObject({ keepalivePolicy: "fixed" });
    const hybrid = await deployHello(app, { keepalivePolicy: "hybrid" });
    expect(hybrid.json().function).toMatchObject({ keepalivePolicy: "hybrid" });
    expect((await app.inject({ method: "GET", url: "/functions/hello" })).json().keepalive).toMatchObject({ policy: "hybrid", idleTimes: 0 });
    expect((await deployHello(app, { keepalivePolicy: "lru" })).json()).toMatchObject({ statusCode: 400, message: expect.stringContaining("keepalivePolicy") });
    // A past to learn from: the new pool's policy starts with it.
    expect((await deployHello(app, { keepalivePolicy: "hybrid", idleHistoryMs: [0, 60_000, 120_000] })).statusCode).toBe(200);
    expect((await app.inject({ method: "GET", url: "/functions/hello" })).json().keepalive).toMatchObject({ idleTimes: 3 });
    expect((await deployHello(app, { idleHistoryMs: [-1] })).statusCode).toBe(400);

    expect((await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "a" } })).statusCode).toBe(200);
    const { lifetimes } = (await app.inject({ method: "GET", url: "/functions/hello/lifetimes" })).json();
    expect(lifetimes).toMatchObject([{ instance: "hello-0", function: "hello", memMib: 256, start: "boot", prewarmed: false, endedAt: null }]);
    expect(Date.parse(lifetimes[0].startedAt)).toBeLessThanOrEqual(Date.parse(lifetimes[0].readyAt));
    expect((await app.inject({ method: "GET", url: "/functions/nope/lifetimes" })).statusCode).toBe(404);
  });

  it("deploys with a pool of pre-started VMMs, shows it and its metrics, and refuses bad pool options with 400", async () => {
    const { app } = await daemon();
    const plain = await deployHello(app);
    expect(plain.json().function).toMatchObject({ poolDepth: 0, poolInstalled: false });
    expect((await app.inject({ method: "GET", url: "/functions/hello" })).json().pool).toBeNull();
    const pooled = await deployHello(app, { poolDepth: 2, poolInstalled: true });
    expect(pooled.json().function).toMatchObject({ poolDepth: 2, poolInstalled: true });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await app.inject({ method: "GET", url: "/functions/hello" })).json().pool).toEqual({ depth: 2, ready: 2, starting: 0, heldMib: 80, installed: true });
    const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toContain('vhive_pooled_vmms{function="hello",state="ready"} 2');
    expect(metrics).toContain('vhive_pooled_vmm_memory_mib{function="hello"} 80');
    expect((await deployHello(app, { poolDepth: 17 })).json()).toMatchObject({ statusCode: 400, message: expect.stringContaining("poolDepth") });
    expect((await deployHello(app, { poolDepth: 1, start: "boot" })).json()).toMatchObject({ statusCode: 400, code: "ERR_VALIDATION", message: expect.stringContaining("needs start reap") });
    expect((await deployHello(app, { poolInstalled: "yes" })).statusCode).toBe(400);
  });

  it("POST /functions refuses a name that is deployed already with 409", async () => {
    const { app } = await daemon();
    const first = await app.inject({ method: "POST", url: "/functions", payload: { name: "hello", image: "helloworld" } });
    expect(first.statusCode).toBe(201);
    const again = await app.inject({ method: "POST", url: "/functions", payload: { name: "hello", image: "helloworld" } });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: "ERR_FUNCTION_EXISTS", statusCode: 409 });
  });

  it("rejects unknown fields, wrong types and missing fields with 400 naming the field", async () => {
    const { app } = await daemon();
    const unknown = await deployHello(app, { colour: "blue" });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toEqual({ code: "ERR_VALIDATION", message: "body has unknown field colour", statusCode: 400 });
    const wrongType = await deployHello(app, { keepaliveMs: "60s" });
    expect(wrongType.json()).toMatchObject({ code: "ERR_VALIDATION", message: "body.keepaliveMs must be integer" });
    const badEnum = await deployHello(app, { start: "fast" });
    expect(badEnum.json().message).toBe("body.start must be one of boot, vanilla, reap");
    const missing = await app.inject({ method: "PUT", url: "/functions/hello", payload: {} });
    expect(missing.json().message).toBe("body.image is required");
    const badName = await app.inject({ method: "PUT", url: "/functions/Bad..Name", payload: { image: "helloworld" } });
    expect(badName.json()).toMatchObject({ statusCode: 400, message: expect.stringContaining("params.name must match pattern") });
    const badImage = await app.inject({ method: "PUT", url: "/functions/hello", payload: { image: "nope" } });
    expect(badImage.json()).toMatchObject({ statusCode: 400, code: "ERR_IMAGE_NOT_FOUND", message: "image: no image named nope" });
    const badInvoke = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "x", extra: 1 } });
    expect(badInvoke.json()).toMatchObject({ statusCode: 400, message: "body has unknown field extra" });
    const badJson = await app.inject({ method: "PUT", url: "/functions/hello", headers: { "content-type": "application/json" }, payload: "{ nope" });
    expect(badJson.json()).toMatchObject({ statusCode: 400, code: "ERR_VALIDATION" });
  });

  it("invokes: the envelope has the response, the start kind, totalMs and the breakdown, and the record is kept", async () => {
    const { app, starter } = await daemon();
    starter.kinds = ["record"];
    await deployHello(app);
    const cold = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "vhive" } });
    expect(cold.statusCode).toBe(200);
    expect(cold.json()).toMatchObject({ function: "hello", start: "record", response: { message: "Hello, vhive!" }, text: "Hello, vhive!", instance: "hello-0", breakdown: { startMs: 5, invokeMs: 1 } });
    expect(cold.json().totalMs).toBeGreaterThanOrEqual(0);
    const warm = await app.inject({ method: "POST", url: "/functions/hello/invoke" });
    expect(warm.json()).toMatchObject({ start: "warm", text: "Hello, world!" });
    const json = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: { name: "json" } } });
    expect(starter.instances[0]!.invocations).toEqual(["vhive", undefined, '{"name":"json"}']);
    expect(json.statusCode).toBe(200);
    const records = (await app.inject({ method: "GET", url: "/functions/hello/invocations?limit=2" })).json().invocations;
    expect(records.map((r: { start: string }) => r.start)).toEqual(["warm", "warm"]);
    const instances = (await app.inject({ method: "GET", url: "/instances" })).json().instances;
    expect(instances).toMatchObject([{ id: "hello-0", function: "hello", state: "idle", start: "record", invocations: 3 }]);
    expect((await app.inject({ method: "GET", url: "/functions/hello/snapshots" })).json()).toEqual({ snapshots: [{ id: "s1", workingSet: null }] });
  });

  it("deploys with a method and proto of its own (no rebuild), checked first; a bad one is refused with 400", async () => {
    const { app, starter, store } = await daemon();
    const deployed = await deployHello(app, { method: "textstats.TextStats/Count", proto: "/srv/protos/textstats.proto" });
    expect(deployed.statusCode).toBe(201);
    expect(deployed.json().function).toMatchObject({ method: "textstats.TextStats/Count", protoPath: "/srv/protos/textstats.proto" });
    expect(store.getFunction("hello")).toMatchObject({ method: "textstats.TextStats/Count", protoPath: "/srv/protos/textstats.proto" });
    expect(starter.checkedFunctions.at(-1)).toMatchObject({ method: "textstats.TextStats/Count" });
    const unknown = await deployHello(app, { method: "no.Such/Method" });
    expect(unknown.json()).toMatchObject({ statusCode: 400, code: "ERR_PROTO_INVALID" });
    expect(store.getFunction("hello")?.method).toBe("textstats.TextStats/Count"); // the refused update changed nothing
    expect((await deployHello(app, { method: "SayHello" })).json()).toMatchObject({ statusCode: 400, message: expect.stringContaining("body.method must match pattern") });
    expect((await deployHello(app, { proto: "protos/x.proto" })).json()).toMatchObject({ statusCode: 400, message: expect.stringContaining("body.proto must match pattern") });
  });

  it("refuses request data that cannot be a request with 400 before any instance starts", async () => {
    const { app, starter } = await daemon();
    await deployHello(app);
    const refused = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "malformed" } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ code: "ERR_VALIDATION", message: expect.stringContaining("--data must be a JSON object for demo.Order") });
    expect(starter.instances).toHaveLength(0);
    expect(starter.checked).toEqual(["malformed"]);
  });

  it("a function slower than its invocation timeout gives 504 ERR_INVOKE_TIMEOUT; deploy sets the timeout, a request may set its own", async () => {
    const { app } = await daemon();
    expect((await deployHello(app, { invokeTimeoutMs: 0 })).json()).toMatchObject({ statusCode: 400, message: "body.invokeTimeoutMs must be >= 1" });
    expect((await deployHello(app)).json().function.invokeTimeoutMs).toBe(60_000);
    await deployHello(app, { invokeTimeoutMs: 1500 });
    const slow = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "slow" } });
    expect(slow.statusCode).toBe(504);
    expect(slow.json()).toMatchObject({ code: "ERR_INVOKE_TIMEOUT", message: "helloworld.Greeter/SayHello did not answer within 1.5 s (the invocation timeout, --timeout)" });
    const own = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "slow", timeoutMs: 250 } });
    expect(own.json().message).toContain("within 250 ms");
  });

  it("an instance that dies mid-request gives 502 naming the function and the instance; the next request gets a new instance", async () => {
    const { app, starter } = await daemon();
    starter.holdNew = true;
    await deployHello(app);
    const pending = app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "x" } });
    while (starter.instances[0]?.held !== 1) await new Promise((resolve) => setImmediate(resolve));
    starter.instances[0]!.die();
    const failed = await pending;
    expect(failed.statusCode).toBe(502);
    expect(failed.json()).toMatchObject({ code: "ERR_INSTANCE_FAILED", statusCode: 502, message: expect.stringContaining("instance hello-0 of function hello") });
    starter.holdNew = false;
    const next = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "y" } });
    expect(next.json()).toMatchObject({ start: "boot", instance: "hello-1" });
    const records = (await app.inject({ method: "GET", url: "/functions/hello/invocations" })).json().invocations;
    expect(records.map((r: { status: string; errorCode: string | null }) => [r.status, r.errorCode])).toEqual([
      ["error", "ERR_INSTANCE_FAILED"],
      ["ok", null],
    ]);
  });

  it("maps errors to statuses: unknown function 404, function error 502, no capacity 503, unknown route 404", async () => {
    const { app, starter } = await daemon({ budgetMib: 256 });
    expect((await app.inject({ method: "POST", url: "/functions/nope/invoke" })).json()).toMatchObject({ statusCode: 404, code: "ERR_FUNCTION_NOT_FOUND" });
    expect((await app.inject({ method: "GET", url: "/nope" })).json()).toMatchObject({ statusCode: 404, code: "ERR_ROUTE_NOT_FOUND" });
    await deployHello(app, { maxInstances: 1 });
    expect((await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "bad" } })).json()).toMatchObject({ statusCode: 502, code: "ERR_INVOKE" });
    starter.instances[0]!.hold = true;
    const busy = app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "a" } });
    while (starter.instances[0]!.held !== 1) await new Promise((resolve) => setImmediate(resolve));
    const refused = await app.inject({ method: "POST", url: "/functions/hello/invoke", payload: { data: "b" } });
    expect(refused.json()).toMatchObject({ statusCode: 503, code: "ERR_CAPACITY" });
    starter.instances[0]!.release();
    expect((await busy).statusCode).toBe(200);
    expect((await deployHello(app, { memMib: 512 })).json()).toMatchObject({ statusCode: 400, message: expect.stringContaining("memMib: 512 MiB is more than the daemon's whole memory budget") });
  });

  it("DELETE removes the function and retires its instances", async () => {
    const { app, starter } = await daemon();
    await deployHello(app);
    await app.inject({ method: "POST", url: "/functions/hello/invoke" });
    expect((await app.inject({ method: "DELETE", url: "/functions/hello" })).json()).toEqual({ removed: "hello" });
    expect(starter.instances[0]!.retired).toBe(true);
    expect((await app.inject({ method: "GET", url: "/functions/hello" })).statusCode).toBe(404);
    expect((await app.inject({ method: "DELETE", url: "/functions/hello" })).statusCode).toBe(404);
  });

  it("with a token, requests without it or with a wrong one get 401", async () => {
    const { app } = await daemon({ token: "s3cret" });
    const none = await app.inject({ method: "GET", url: "/functions" });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: "ERR_UNAUTHORIZED", statusCode: 401 });
    expect((await app.inject({ method: "GET", url: "/health", headers: { authorization: "Bearer wrong!" } })).statusCode).toBe(401);
    expect((await app.inject({ method: "GET", url: "/functions", headers: { authorization: "Bearer s3cret" } })).statusCode).toBe(200);
  });

  it("serves Prometheus metrics: invocations by start kind, instances, memory", async () => {
    const { app } = await daemon();
    await deployHello(app);
    await app.inject({ method: "POST", url: "/functions/hello/invoke" });
    await app.inject({ method: "POST", url: "/functions/hello/invoke" });
    const metrics = await app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.headers["content-type"]).toContain("text/plain");
    expect(metrics.body).toContain('vhive_invocations_total{function="hello",start="boot",status="ok"} 1');
    expect(metrics.body).toContain('vhive_invocations_total{function="hello",start="warm",status="ok"} 1');
    expect(metrics.body).toContain('vhive_instances{function="hello",state="idle"} 1');
    expect(metrics.body).toContain("vhive_memory_reserved_mib 256");
    expect((await app.inject({ method: "GET", url: "/health" })).json()).toMatchObject({ status: "ok", functions: 1, instances: 1, memoryBudgetMib: 4096 });
  });
});

describe("listen address", () => {
  it("parses host:port and knows loopback addresses", () => {
    expect(parseListen("127.0.0.1:8970")).toEqual({ host: "127.0.0.1", port: 8970 });
    expect(parseListen("[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(() => parseListen("8970")).toThrow(expect.objectContaining({ code: "ERR_VALIDATION" }));
    expect(["127.0.0.1", "127.1.2.3", "::1", "localhost"].map(isLoopback)).toEqual([true, true, true, true]);
    expect(["0.0.0.0", "10.0.0.1", "::"].map(isLoopback)).toEqual([false, false, false]);
  });
});
