import { randomInt } from "node:crypto";
import { ARRIVALS, describeErrors, describeLoadShape, runLoad, summarizeLoad, type LoadReply, type LoadReport, type LoadShape, type WrittenResults } from "../../bench/index.js";
import { clientOptionsFromEnv, DaemonClient } from "../../daemon/index.js";
import type { FunctionRecord } from "../../store/index.js";
import { VhiveError } from "../../shared/errors.js";
import { resultsOptions, withProgressBar, writeAndPrint, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { daemonClient } from "../daemon-client.js";
import { parseDurationMs } from "../duration.js";
import { formatMs, table } from "../format.js";

function describe(report: LoadReport, written: WrittenResults): string {
  const summary = summarizeLoad(report);
  const errors = describeErrors(summary.errors);
  return [
    `${report.function}: ${describeLoadShape(report)}; ${summary.sent} sent, ${summary.ok} ok, ${errors.length > 0 ? `errors ${errors.join(", ")}` : "no errors"}; ${summary.achievedRps.toFixed(1)} replies/s; latency as the client saw it`,
    "",
    table([
      ["start", "requests", "p50", "p90", "p99", "max", "median start"],
      ...summary.latency.map((f) => [f.start, String(f.requests), formatMs(f.p50), formatMs(f.p90), formatMs(f.p99), formatMs(f.max), f.startMs === null ? "" : formatMs(f.startMs)]),
    ]),
    "",
    ...writtenLines(written),
  ].join("\n");
}

export const benchLoadCommand = defineCommand({
  command: "load",
  describe: "open-loop load (poisson or uniform arrivals) against a function deployed on the daemon; per-request latency and start kind",
  builder: (yargs) =>
    resultsOptions(yargs, "load")
      .option("function", { type: "string", default: "helloworld", describe: "a function deployed on the daemon at $VHIVE_URL" })
      .option("rps", { type: "number", default: 2, describe: "requests per second offered (open loop)" })
      .option("duration", { type: "string", default: "60s", describe: "how long requests are sent, e.g. 60s or 5m" })
      .option("arrival", { choices: ARRIVALS, default: "poisson" as const, describe: "gaps between requests: exponential (poisson) or equal (uniform)" })
      .option("seed", { type: "number", describe: "seed of the poisson arrival times (default: random, recorded in the results)" })
      .option("clients", { type: "number", describe: "closed loop instead: this many clients invoking back to back (--rps and --arrival are ignored)" })
      .option("data", { type: "string", describe: "request data, as for vhive invoke (default: the function's default request)" })
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

    const daemon = daemonClient(context);
    const health = await daemon.request<{ accel?: string }>("GET", "/health");
    const { function: fn } = await daemon.request<{ function: FunctionRecord }>("GET", `/functions/${encodeURIComponent(args.function)}`);
    const path = `/functions/${encodeURIComponent(fn.name)}/invoke`;
    const body = args.data === undefined ? {} : { data: args.data };
    // A client per request: each has its own signal (Ctrl-C or its timeout).
    const clientOptions = clientOptionsFromEnv();
    const target = (signal: AbortSignal) => new DaemonClient({ ...clientOptions, signal }).request<LoadReply>("POST", path, body);

    const startedAt = new Date().toISOString();
    const rows = await withProgressBar("load", context, (onProgress) => runLoad(target, { shape, durationMs, timeoutMs, signal: context.signal, onProgress }));
    const report: LoadReport = {
      experiment: "load",
      url: daemon.url,
      function: fn.name,
      deployment: { imageRef: fn.imageRef, memMib: fn.memMib, vcpus: fn.vcpus, start: fn.start, keepaliveMs: fn.keepaliveMs, minInstances: fn.minInstances, maxInstances: fn.maxInstances, concurrency: fn.concurrency },
      accel: health.accel ?? null,
      startedAt,
      arrival: shape.kind === "open" ? shape.arrival : "closed",
      rps: shape.kind === "open" ? shape.rps : null,
      seed: shape.kind === "open" && shape.arrival === "poisson" ? shape.seed : null,
      clients: shape.kind === "closed" ? shape.clients : null,
      durationMs,
      timeoutMs,
      data: args.data ?? null,
      rows,
    };
    await writeAndPrint(report, args, "load", context, describe, { summary: summarizeLoad(report) });
  },
});
