/**
 * The daemon's HTTP API (fastify, JSON). Every body and parameter is validated by a JSON
 * schema that rejects unknown fields; every error is { code, message, statusCode }.
 *
 *   GET    /health                         liveness, accelerator, memory budget
 *   GET    /metrics                        Prometheus text
 *   GET    /functions                      deployed functions
 *   POST   /functions                      deploy { name, image, ... } (409 if it exists)
 *   PUT    /functions/:name                deploy or update { image, ... }
 *   GET    /functions/:name                one function, its instances, queue, keep-alive state and pooled VMMs
 *   DELETE /functions/:name                remove it (instances stop; snapshots stay)
 *   POST   /functions/:name/invoke         { data?, timeoutMs? } -> { response, start, totalMs, breakdown, ... }
 *   GET    /functions/:name/invocations    recorded invocations (?limit=N)
 *   GET    /functions/:name/snapshots      its snapshots and their working sets
 *   GET    /functions/:name/lifetimes      when each of its instances started and ended (memory-time)
 *   GET    /instances                      every running instance
 *
 * With a token, every request needs `Authorization: Bearer <token>` (else 401).
 */
import { timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import { VhiveError } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { DeploySpec, Functions } from "../orchestrator/index.js";
import { KEEPALIVE_POLICIES, START_POLICIES } from "../store/index.js";
import { errorHandler } from "./errors.js";
import type { DaemonMetrics } from "./metrics.js";

export interface AppOptions {
  functions: Functions;
  metrics: DaemonMetrics;
  log: Log;
  /** Required bearer token; none on loopback by default. */
  token?: string;
  /** The snapshots of a function, as the API shows them. */
  snapshots: (fn: string) => Promise<unknown[]>;
  /** Extra fields for GET /health (accelerator, QEMU version). */
  health?: Record<string, unknown>;
}

const NAME = { type: "string", pattern: "^[a-z0-9][a-z0-9_.-]{0,62}$" } as const;
/** An invocation timeout: up to an hour. */
const INVOKE_TIMEOUT_MS = { type: "integer", minimum: 1, maximum: 3_600_000 } as const;

const DEPLOY_FIELDS = {
  image: { type: "string", minLength: 1 },
  memMib: { type: "integer", minimum: 64, maximum: 16384 },
  vcpus: { type: "integer", minimum: 1, maximum: 16 },
  start: { type: "string", enum: START_POLICIES },
  keepaliveMs: { type: "integer", minimum: 0, maximum: 86_400_000 },
  keepalivePolicy: { type: "string", enum: KEEPALIVE_POLICIES },
  minInstances: { type: "integer", minimum: 0, maximum: 64 },
  maxInstances: { type: "integer", minimum: 1, maximum: 64 },
  concurrency: { type: "integer", minimum: 1, maximum: 256 },
  poolDepth: { type: "integer", minimum: 0, maximum: 16 },
  poolInstalled: { type: "boolean" },
  idleHistoryMs: { type: "array", items: { type: "integer", minimum: 0 }, maxItems: 100_000 },
  invokeTimeoutMs: INVOKE_TIMEOUT_MS,
  method: { type: "string", pattern: "^[A-Za-z_][\\w.]*/[A-Za-z_]\\w*$" },
  // A path on the daemon's host: absolute, since the daemon's working directory is not the client's.
  proto: { type: "string", pattern: "^/" },
} as const;

const nameParams = { type: "object", properties: { name: NAME }, required: ["name"], additionalProperties: false } as const;

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { functions, log } = options;
  const app = Fastify({
    logger: false,
    // Unknown fields are an error, not something to drop silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  app.setErrorHandler(errorHandler(log));
  app.setNotFoundHandler((request) => {
    throw new VhiveError("ERR_ROUTE_NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`, { remedy: "the README's API section lists the routes" });
  });
  if (options.token !== undefined) {
    const expected = Buffer.from(`Bearer ${options.token}`);
    app.addHook("onRequest", async (request) => {
      const given = Buffer.from(request.headers.authorization ?? "");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new VhiveError("ERR_UNAUTHORIZED", "this daemon needs a bearer token (Authorization: Bearer <token>)", { remedy: "set VHIVE_TOKEN to the daemon's token" });
      }
    });
  }

  app.get("/health", async () => ({
    status: "ok",
    functions: functions.list().length,
    instances: functions.instances().length,
    memoryBudgetMib: functions.budget.totalMib,
    memoryReservedMib: functions.budget.reservedMib,
    ...options.health,
  }));

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", options.metrics.registry.contentType);
    return options.metrics.registry.metrics();
  });

  app.get("/functions", async () => ({ functions: functions.list() }));

  app.post<{ Body: DeploySpec & { name: string } }>(
    "/functions",
    { schema: { body: { type: "object", properties: { name: NAME, ...DEPLOY_FIELDS }, required: ["name", "image"], additionalProperties: false } } },
    async (request, reply) => {
      const { name, ...spec } = request.body;
      const { fn } = await functions.deploy(name, spec, "create");
      return reply.status(201).send({ function: fn });
    },
  );

  app.put<{ Params: { name: string }; Body: DeploySpec }>(
    "/functions/:name",
    { schema: { params: nameParams, body: { type: "object", properties: DEPLOY_FIELDS, required: ["image"], additionalProperties: false } } },
    async (request, reply) => {
      const { fn, created } = await functions.deploy(request.params.name, request.body, "upsert");
      return reply.status(created ? 201 : 200).send({ function: fn });
    },
  );

  app.get<{ Params: { name: string } }>("/functions/:name", { schema: { params: nameParams } }, async (request) => {
    const fn = functions.get(request.params.name);
    return {
      function: fn,
      instances: functions.instances().filter((instance) => instance.function === fn.name),
      queueLength: functions.queueLengths()[fn.name] ?? 0,
      keepalive: functions.keepalive(fn.name),
      // Its pre-started VMMs: depth, ready, starting, heldMib (null when it keeps none).
      pool: functions.vmmPool(fn.name) ?? null,
    };
  });

  app.delete<{ Params: { name: string } }>("/functions/:name", { schema: { params: nameParams } }, async (request) => {
    await functions.remove(request.params.name);
    return { removed: request.params.name };
  });

  app.post<{ Params: { name: string }; Body: { data?: string | Record<string, unknown>; timeoutMs?: number } | undefined }>(
    "/functions/:name/invoke",
    {
      schema: {
        params: nameParams,
        body: { type: "object", properties: { data: { anyOf: [{ type: "string" }, { type: "object" }] }, timeoutMs: INVOKE_TIMEOUT_MS }, additionalProperties: false },
      },
      // No body at all is the function's default request.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const data = request.body?.data;
      const text = data === undefined || typeof data === "string" ? data : JSON.stringify(data);
      const abort = new AbortController();
      const onClose = () => {
        if (!request.raw.complete || request.raw.destroyed) abort.abort();
      };
      request.raw.socket.once("close", onClose);
      try {
        return await functions.invoke(request.params.name, text, { signal: abort.signal, timeoutMs: request.body?.timeoutMs });
      } finally {
        request.raw.socket.off("close", onClose);
      }
    },
  );

  app.get<{ Params: { name: string }; Querystring: { limit?: string } }>(
    "/functions/:name/invocations",
    { schema: { params: nameParams, querystring: { type: "object", properties: { limit: { type: "string", pattern: "^[1-9][0-9]{0,4}$" } }, additionalProperties: false } } },
    async (request) => ({ invocations: functions.invocations(request.params.name, request.query.limit ? Number(request.query.limit) : 100) }),
  );

  app.get<{ Params: { name: string } }>("/functions/:name/snapshots", { schema: { params: nameParams } }, async (request) => {
    functions.get(request.params.name);
    return { snapshots: await options.snapshots(request.params.name) };
  });

  app.get<{ Params: { name: string } }>("/functions/:name/lifetimes", { schema: { params: nameParams } }, async (request) => ({
    lifetimes: functions.lifetimes(request.params.name),
  }));

  app.get("/instances", async () => ({ instances: functions.instances() }));

  return app;
}
