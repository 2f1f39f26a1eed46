import { randomInt } from "node:crypto";
import { addressTarget, ARRIVALS, describeErrors, describeLoadShape, runLoad, summarizeLoad, type LoadReply, type LoadReport, type LoadRow, type LoadShape, type LoadTarget, type WrittenResults } from "../../bench/index.js";
import { clientOptionsFromEnv, DaemonClient } from "../../daemon/index.js";
import { addressClient, DEFAULT_GRPC_METHOD, parseFunctionAddress } from "../../invoke/index.js";
import type { FunctionRecord } from "../../store/index.js";
import { VhiveError } from "../../shared/errors.js";
import { resultsOptions, withProgressBar, writeAndPrint, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import type { CliContext } from "../context.js";
import { daemonClient } from "../daemon-client.js";
import { parseDurationMs } from "../duration.js";
import { formatMs, table } from "../format.js";

function describe(report: LoadReport, written: WrittenResults): string {
  const summary = summarizeLoad(report);
  const errors = describeErrors(summary.errors);
  return [
    `${report.function}: ${describeLoadShape(report)}; ${summary.sent} sent, ${summary.ok} ok, ${errors.length > 0 ? `errors ${errors.join(", ")}` : "no errors"}; ${summary.achievedRps.toFixed(1)} replies/s; latency as the client saw it`,
    ...(report.deployment ? [] : [`at ${report.url}, not a vhive daemon: start kinds unknown`]),
    "",
    table([
      ["start", "requests", "p50", "p90", "p99", "max", "median start"],
      ...summary.latency.map((f) => [f.start, String(f.requests), formatMs(f.p50), formatMs(f.p90), formatMs(f.p99), formatMs(f.max), f.startMs === null ? "" : formatMs(f.startMs)]),
    ]),
    "",
    ...writtenLines(written),
  ].join("\n");
}

/** What a run drives, and what its report says about it. */
interface LoadPlan {
  target: LoadTarget;
  about: Pick<LoadReport, "url" | "function" | "deployment" | "accel" | "method" | "data">;
  close(): void;
}

/** A function deployed on the daemon at $VHIVE_URL: each request one POST .../invoke. */
async function daemonPlan(name: string, data: string | undefined, context: CliContext): Promise<LoadPlan> {
  const daemon = daemonClient(context);
  const health = await daemon.request<{ accel?: string }>("GET", "/health");
  const { function: fn } = await daemon.request<{ function: FunctionRecord }>("GET", `/functions/${encodeURIComponent(name)}`);
  const path = `/functions/${encodeURIComponent(fn.name)}/invoke`;
  const body = data === undefined ? {} : { data };
  // A client per request: each has its own signal (Ctrl-C or its timeout).
  const clientOptions = clientOptionsFromEnv();
  return {
    target: (signal) => new DaemonClient({ ...clientOptions, signal }).request<LoadReply>("POST", path, body),
    about: {
      url: daemon.url,
      function: fn.name,
      deployment: { imageRef: fn.imageRef, memMib: fn.memMib, vcpus: fn.vcpus, start: fn.start, keepaliveMs: fn.keepaliveMs, minInstances: fn.minInstances, maxInstances: fn.maxInstances, concurrency: fn.concurrency },
      accel: health.accel ?? null,
      data: data ?? null,
    },
    close: () => {},
  };
}

/**
 * A function behind any address (--url): one client for the whole run, as a long-lived caller
 * has; the request is checked against the method's request type before anything is sent.
 */
function addressPlan(args: { url: string; function?: string; data?: string; method?: string; proto?: string }, timeoutMs: number): LoadPlan {
  const address = parseFunctionAddress(args.url);
  const client = addressClient(address, { method: args.method, protoPath: args.proto, invokeTimeoutMs: timeoutMs });
  // As `vhive run` without a recipe's inputs: "world" for gRPC, a GET for HTTP.
  const data = args.data ?? (address.protocol === "grpc" ? "world" : "");
  try {
    client.checkRequest(data);
  } catch (error) {
    client.close();
    throw error;
  }
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  const url = address.protocol === "grpc" ? `grpc://${host}:${address.port}` : `http://${host}:${address.port}${address.path}`;
  return {
    target: addressTarget(client, data),
    about: { url, function: args.function ?? url, deployment: null, accel: null, data, ...(address.protocol === "grpc" ? { method: args.method ?? DEFAULT_GRPC_METHOD } : {}) },
    close: () => client.close(),
  };
}

export const benchLoadCommand = defineCommand({
  command: "load",
  describe: "open-loop load (poisson or uniform arrivals) against a function deployed on the daemon, or at any gRPC or HTTP address (--url); per-request latency and start kind",
  builder: (yargs) =>
    resultsOptions(yargs, "load")
      .option("function", { type: "string", describe: "a function deployed on the daemon at $VHIVE_URL (default helloworld); with --url, its name in the results (default: the address)" })
      .option("url", {
        type: "string",
        describe: "drive the function at this address instead of the daemon (a pod IP, a Knative route): host:port or grpc://host:port for gRPC, http://host:port/path for HTTP; start kinds are then unknown",
      })
      .option("method", { type: "string", describe: "with --url: gRPC method, package.Service/Method (default helloworld.Greeter/SayHello)" })
      .option("proto", { type: "string", describe: "with --url: .proto file that defines the method (default vhive's helloworld.proto)" })
      .option("rps", { type: "number", default: 2, describe: "requests per second offered (open loop)" })
      .option("duration", { type: "string", default: "60s", describe: "how long requests are sent, e.g. 60s or 5m" })
      .option("arrival", { choices: ARRIVALS, default: "poisson" as const, describe: "gaps between requests: exponential (poisson) or equal (uniform)" })
      .option("seed", { type: "number", describe: "seed of the poisson arrival times (default: random, recorded in the results)" })
      .option("clients", { type: "number", describe: "closed loop instead: this many clients invoking back to back (--rps and --arrival are ignored)" })
      .option("data", { type: "string", describe: "request data, as for vhive invoke (default: the function's default request; with --url, \"world\" for gRPC and a GET for HTTP)" })
      .option("timeout", { type: "string", default: "120s", describe: "a request without a reply after this long counts as an error" }),
  run: async (args, context) => {
    const durationMs = parseDurationMs(args.duration, "duration");
    const timeoutMs = parseDurationMs(args.timeout, "timeout");
    if (args.clients !== undefined && !(Number.isInteger(args.clients) && args.clients >= 1 && args.clients <= 1024)) {
      throw new VhiveError("ERR_VALIDATION", `--clients ${args.clients}: expected a whole number from 1 to 1024`);
    }
    if (args.clients === undefined && !(args.rps > 0 && args.rps <= 10_000)) throw new VhiveError("ERR_VALIDATION", `--rps ${args.rps}: expected a rate above 0 and at most 10000 requests per second`);
    if (!(durationMs > 0)) throw new VhiveError("ERR_VALIDATION", `--duration ${args.duration}: expected a duration above 0`);
    const seed = args.seed ?? randomInt(2 ** 31);
    const shape: LoadShape = args.clients === undefined ? { kind: "open", arrival: args.arrival, rps: args.rps, seed } : { kind: "closed", clients: args.clients };
    if (args.url === undefined && (args.method !== undefined || args.proto !== undefined)) {
      throw new VhiveError("ERR_VALIDATION", "--method and --proto go with --url", { remedy: "a function on the daemon is called with its deployment's method: set it with vhive deploy --method/--proto" });
    }

    const plan = args.url === undefined ? await daemonPlan(args.function ?? "helloworld", args.data, context) : addressPlan({ ...args, url: args.url }, timeoutMs);
    const startedAt = new Date().toISOString();
    let rows: LoadRow[];
    try {
      rows = await withProgressBar("load", context, (onProgress) => runLoad(plan.target, { shape, durationMs, timeoutMs, signal: context.signal, onProgress }));
    } finally {
      plan.close();
    }
    const report: LoadReport = {
      experiment: "load",
      ...plan.about,
      startedAt,
      arrival: shape.kind === "open" ? shape.arrival : "closed",
      rps: shape.kind === "open" ? shape.rps : null,
      seed: shape.kind === "open" && shape.arrival === "poisson" ? shape.seed : null,
      clients: shape.kind === "closed" ? shape.clients : null,
      durationMs,
      timeoutMs,
      rows,
    };
    await writeAndPrint(report, args, "load", context, describe, { summary: summarizeLoad(report) });
  },
});
