import { randomInt } from "node:crypto";
import { resolve } from "node:path";
import { writeResults, defaultOutDir, fmtPct, type LoadReply } from "../../bench/index.js";
import { readInvocationCounts, readTraceFunctions } from "../../bench/trace/azure.js";
import { idleTimesFromCounts, planRequests } from "../../bench/trace/plan.js";
import { replay, requestData, type TraceFunctionInfo, type TraceReport } from "../../bench/trace/replay.js";
import { DEFAULT_TRIALS, sampleFunctions } from "../../bench/trace/sample.js";
import { summarizeTrace } from "../../bench/trace/summary.js";
import { clientOptionsFromEnv, DaemonClient } from "../../daemon/index.js";
import type { InstanceLifetime } from "../../orchestrator/index.js";
import { isVhiveError, VhiveError } from "../../shared/errors.js";
import { START_POLICIES, type FunctionRecord, type KeepalivePolicyName } from "../../store/index.js";
import { resolveFunction, resultsOptions, withProgressBar, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import type { CliContext } from "../context.js";
import { parseDurationMs } from "../duration.js";
import { formatMs, table } from "../format.js";
import { withProgress } from "../progress.js";

const TRACE_IMAGE = "trace_func";

/** --keepalive: "hybrid", or a duration for fixed keep-alive. */
function parseKeepalive(text: string): { policy: KeepalivePolicyName; keepaliveMs: number; label: string } {
  if (text === "hybrid") return { policy: "hybrid", keepaliveMs: 600_000, label: "hybrid" };
  const keepaliveMs = parseDurationMs(text, "keepalive");
  return { policy: "fixed", keepaliveMs, label: `fixed-${text.trim()}` };
}

function positive(value: number, option: string, { integer = false, max = Infinity } = {}): number {
  if (!(value > 0) || (integer && !Number.isInteger(value)) || value > max) {
    throw new VhiveError("ERR_VALIDATION", `--${option} ${value}: expected ${integer ? "a whole number" : "a number"} above 0${max < Infinity ? ` and at most ${max}` : ""}`);
  }
  return value;
}

/** Until none of `names` has an instance (the prepare's last pool drained, snapshots saved). */
async function waitNoInstances(daemon: DaemonClient, names: ReadonlySet<string>, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { instances } = await daemon.request<{ instances: { function: string }[] }>("GET", "/instances");
    if (!instances.some((instance) => names.has(instance.function))) return;
    await new Promise((done) => setTimeout(done, 500));
  }
  throw new VhiveError("ERR_CAPACITY", `the trace functions still have instances after ${timeoutMs / 1000} s of preparing`);
}

function describe(report: TraceReport, written: { report: string; files: string[]; outDir: string }): string {
  const figures = summarizeTrace(report);
  const [all] = figures;
  return [
    `${report.label}: ${all!.sent} requests to ${report.functions.length} functions over ${report.minutes} min, ${all!.errors} errors; cold starts ${fmtPct(all!.coldShare)}; memory-time ${all!.memoryGibS.toFixed(1)} GiB-s`,
    "",
    table([
      ["function", "requests", "cold", "starts", "GiB-s", "p50", "p99", "slowdown p50"],
      ...figures.map((f) => [
        f.function,
        String(f.sent),
        fmtPct(f.coldShare),
        Object.entries(f.starts)
          .map(([kind, n]) => `${kind} ${n}`)
          .join(", "),
        f.memoryGibS.toFixed(1),
        formatMs(f.p50Ms),
        formatMs(f.p99Ms),
        Number.isFinite(f.slowdownP50) ? f.slowdownP50.toFixed(2) : "",
      ]),
    ]),
    "",
    ...writtenLines(written),
  ].join("\n");
}

/** The image to deploy: the daemon's own state built locally if it is this CLI's, else as given. */
async function traceImage(ref: string, health: { stateDir?: string }, context: CliContext): Promise<string> {
  if (ref !== TRACE_IMAGE || health.stateDir !== resolve(context.stateDir)) return ref;
  return (await resolveFunction(TRACE_IMAGE, context)).id;
}

export const benchTraceCommand = defineCommand({
  command: "trace",
  describe: "replay a sample of the Azure Functions trace 2019 against the daemon: cold-start share, latency, slowdown and memory-time per keep-alive policy",
  builder: (yargs) =>
    resultsOptions(yargs, "trace")
      .option("trace", { type: "string", demandOption: true, describe: "directory with the trace's CSV files (azurefunctions-dataset2019, unpacked)" })
      .option("day", { type: "number", default: 1, describe: "which day's files (1..12: memory is given for days 1 to 12)" })
      .option("functions", { type: "number", default: 10, describe: "functions to sample (each deployed as its own vhive function)" })
      .option("minutes", { type: "number", default: 10, describe: "minutes of the trace to replay (in real time)" })
      .option("start-minute", { type: "number", default: 0, describe: "first minute of the day replayed (0..1439)" })
      .option("history-minutes", {
        type: "number",
        describe: "hybrid: minutes of the trace before --start-minute whose idle times the policy learns first (default: up to 240, as many as there are)",
      })
      .option("scale", { type: "number", default: 1, describe: "multiply every per-minute count by this (e.g. 0.1 to fit a small machine)" })
      .option("seed", { type: "number", describe: "seed of the sample and the requests (default: random, recorded in the results)" })
      .option("trials", { type: "number", default: DEFAULT_TRIALS, describe: "candidate samples the sampler scores" })
      .option("keepalive", { type: "string", default: "10m", describe: "keep-alive of the deployed functions: a duration (fixed keep-alive, e.g. 10m) or hybrid" })
      .option("start", { choices: START_POLICIES, default: "reap" as const, describe: "how the functions' cold starts are made" })
      .option("memory", { type: "number", default: 256, describe: "guest memory of each function, MiB" })
      .option("max-runtime", { type: "string", default: "10s", describe: "cap on an invocation's execution time drawn from the trace" })
      .option("max-memory", { type: "number", default: 128, describe: "cap on the memory an invocation touches, MiB (leave room for the guest's own)" })
      .option("image", { type: "string", default: TRACE_IMAGE, describe: "image of the trace function on the daemon (built here when the daemon shares --state)" })
      .option("prefix", { type: "string", default: "trace", describe: "deployed functions are named <prefix>-<n>-<function hash>" })
      .option("prepare", { type: "boolean", default: true, describe: "before the replay, make each function's snapshot and working set (untimed) unless it has them" })
      .option("keep", { type: "boolean", default: false, describe: "leave the functions deployed after the run (default: removed; their snapshots stay)" })
      .option("url", { type: "string", describe: "the daemon to drive, its HTTP API (default: $VHIVE_URL); a function at a plain address: vhive bench load --url" })
      .option("timeout", { type: "string", default: "120s", describe: "a request without a reply after this long counts as an error" }),
  run: async (args, context) => {
    const minutes = positive(args.minutes, "minutes", { integer: true, max: 1440 });
    const size = positive(args.functions, "functions", { integer: true, max: 500 });
    const scale = positive(args.scale, "scale", { max: 1000 });
    const trials = positive(args.trials, "trials", { integer: true, max: 100_000 });
    const day = positive(args.day, "day", { integer: true, max: 14 });
    const memMib = positive(args.memory, "memory", { integer: true });
    const maxMemoryMib = positive(args["max-memory"], "max-memory", { integer: true, max: memMib });
    const maxRuntimeMs = parseDurationMs(args["max-runtime"], "max-runtime");
    const timeoutMs = parseDurationMs(args.timeout, "timeout");
    const keepalive = parseKeepalive(args.keepalive);
    const seed = args.seed ?? randomInt(2 ** 31);
    const window = { startMinute: args["start-minute"], minutes };
    const historyMinutes = keepalive.policy === "hybrid" ? Math.min(window.startMinute, args["history-minutes"] ?? 240) : 0;
    if (!(historyMinutes >= 0 && Number.isInteger(historyMinutes))) throw new VhiveError("ERR_VALIDATION", `--history-minutes ${args["history-minutes"]}: expected a whole number >= 0`);

    const { sample, requests, history } = await withProgress("reading the trace", context.log, async () => {
      const population = await readTraceFunctions(args.trace, day, window);
      const sample = sampleFunctions(population, { size, seed, trials, minutes });
      const read = { startMinute: window.startMinute - historyMinutes, minutes: historyMinutes + minutes };
      const counts = await readInvocationCounts(args.trace, day, read, new Set(sample.functions.map((fn) => fn.key)));
      const of = (fn: { key: string }) => counts.get(fn.key)!;
      const requests = planRequests(sample.functions, sample.functions.map((fn) => of(fn).slice(historyMinutes)), { seed, scale, maxRuntimeMs, maxMemoryMib });
      // The policy's past: the function's idle times in the minutes before the window.
      const history = sample.functions.map((fn) => (historyMinutes > 0 ? idleTimesFromCounts(of(fn).slice(0, historyMinutes)) : undefined));
      return { sample, requests, history };
    });
    if (requests.length === 0) throw new VhiveError("ERR_VALIDATION", `the sampled functions have no invocation in the window after scaling by ${scale}`, { remedy: "raise --scale, or replay more --minutes" });

    const env = clientOptionsFromEnv();
    const url = args.url ?? env.url;
    const daemon = new DaemonClient({ url, token: env.token, signal: context.signal });
    const health = await daemon.request<{ accel?: string; stateDir?: string }>("GET", "/health");
    const image = await traceImage(args.image, health, context);
    const functions: TraceFunctionInfo[] = sample.functions.map((fn, i) => ({
      name: `${args.prefix}-${String(i).padStart(2, "0")}-${fn.function.slice(0, 8).toLowerCase()}`,
      key: fn.key,
      trigger: fn.trigger,
      invocations: fn.invocations,
      averageMs: fn.averageMs,
      averageMb: fn.averageMb,
    }));
    const names = functions.map((fn) => fn.name);
    const spec = { image, start: args.start, memMib, keepalivePolicy: keepalive.policy, keepaliveMs: keepalive.keepaliveMs };
    const deploy = async (name: string) => {
      const idleHistoryMs = history[names.indexOf(name)];
      await daemon.request<{ function: FunctionRecord }>("PUT", `/functions/${name}`, { ...spec, idleHistoryMs }).catch((error: unknown) => {
        if (isVhiveError(error, "ERR_IMAGE_NOT_FOUND")) {
          throw new VhiveError(error.code, error.message, { remedy: `build the trace function on the daemon's host first: vhive image build functions/trace_func --state <the daemon's state directory>` });
        }
        throw error;
      });
    };
    const invoke = (name: string, data: string, signal: AbortSignal) =>
      new DaemonClient({ url, token: env.token, signal }).request<LoadReply>("POST", `/functions/${encodeURIComponent(name)}/invoke`, { data });

    try {
      for (const name of names) await deploy(name);
      if (args.prepare) {
        await withProgressBar("preparing snapshots", context, async (onProgress) => {
          for (const [i, name] of names.entries()) {
            onProgress(i, names.length, `${name}`);
            const { snapshots } = await daemon.request<{ snapshots: { workingSet?: unknown }[] }>("GET", `/functions/${name}/snapshots`);
            // vanilla needs a snapshot, reap a snapshot and its working set.
            const rounds = args.start === "boot" ? 0 : args.start === "vanilla" ? 1 : 2;
            const done = snapshots.length === 0 ? 0 : snapshots.some((s) => s.workingSet) ? 2 : 1;
            // Boot (its instance becomes the snapshot when its pool retires it), then a
            // restore that records the working set; each redeploy retires the instance.
            for (let round = done; round < rounds; round++) {
              await invoke(name, requestData({ runtimeMs: 1, memoryMib: 1 }), context.signal);
              await deploy(name);
            }
          }
          await waitNoInstances(daemon, new Set(names));
        });
      }
      const started = Date.now();
      const rows = await withProgressBar(`replaying ${requests.length} requests`, context, (onProgress) => replay(requests, names, invoke, { timeoutMs, signal: context.signal, onProgress }));
      const ended = Math.max(Date.now(), started + minutes * 60_000);
      const lifetimes: InstanceLifetime[] = [];
      for (const name of names) lifetimes.push(...(await daemon.request<{ lifetimes: InstanceLifetime[] }>("GET", `/functions/${name}/lifetimes`)).lifetimes);
      const report: TraceReport = {
        experiment: "trace",
        label: keepalive.label,
        url: daemon.url,
        accel: health.accel ?? null,
        traceDir: resolve(args.trace),
        day,
        startMinute: window.startMinute,
        minutes,
        scale,
        seed,
        historyMinutes,
        sample: { size, trials, population: sample.population, score: sample.score, medianCandidateScore: sample.medianCandidateScore },
        deployment: { image: args.image, start: args.start, keepalivePolicy: keepalive.policy, keepaliveMs: keepalive.keepaliveMs, memMib, maxRuntimeMs, maxMemoryMib },
        functions,
        startedAt: new Date(started).toISOString(),
        endedAt: new Date(ended).toISOString(),
        timeoutMs,
        lifetimes,
        rows,
      };
      const written = await writeResults(args.out ?? defaultOutDir(context.stateDir, "trace"), report);
      if (args.json) context.printJson({ ...report, summary: summarizeTrace(report), outDir: written.outDir, files: written.files });
      else context.print(describe(report, written));
    } finally {
      if (!args.keep) {
        // Without the run's signal: a Ctrl-C'd run still removes what it deployed.
        const cleanup = new DaemonClient({ url, token: env.token });
        for (const name of names) await cleanup.request("DELETE", `/functions/${name}`).catch(() => {});
      }
    }
  },
});
