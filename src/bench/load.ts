/**
 * `vhive bench load`: load against a function deployed on a daemon, as vHive's invoker drives it,
 * or against a function behind any gRPC or HTTP address (--url: a pod IP, a Knative route).
 *
 * Open loop (the default): every send time is drawn before the run (poisson: exponential gaps
 * of mean 1/rps from a seeded generator; uniform: gaps of exactly 1/rps), and each request goes
 * out at its time whether or not earlier ones have answered. A slow cold start therefore shows
 * as latency and queueing, never as a lower offered rate (no coordinated omission). Closed loop
 * (`clients`): N clients invoke back to back, for the most a deployment can serve.
 *
 * Each request becomes a row: its latency as the client saw it, the start kind the daemon
 * reports (warm, boot, vanilla, record, prefetch) and the daemon's own split of the time. A
 * function behind an address reports none of that: its rows have latency only, start kind null.
 */
import type { FunctionClient } from "../invoke/index.js";
import { roundMs } from "../metrics/index.js";
import { isVhiveError, messageOf, VhiveError } from "../shared/errors.js";
import type { FunctionRecord, StartKind } from "../store/index.js";
import type { ProgressListener } from "./experiments.js";
import { setTimeout as sleep } from "node:timers/promises";
import { seededRandom } from "./random.js";
import { median, percentileOfSorted } from "./stats.js";

export { seededRandom };

export const ARRIVALS = ["poisson", "uniform"] as const;
export type Arrival = (typeof ARRIVALS)[number];

export type LoadShape = { kind: "open"; arrival: Arrival; rps: number; seed: number } | { kind: "closed"; clients: number };

/** What the daemon answered to one invocation. */
export interface LoadReply {
  start: StartKind;
  instance: string;
  totalMs: number;
  breakdown: Record<string, number>;
}

/**
 * Invokes the function once; rejects with a VhiveError when it answers an error. Resolves with
 * the daemon's account of the request, or null from a function behind an address, which gives none.
 */
export type LoadTarget = (signal: AbortSignal) => Promise<LoadReply | null>;

/** A function behind an address as a load target: each request one call with `data` on `client`. */
export function addressTarget(client: FunctionClient, data: string): LoadTarget {
  return async (signal) => {
    await client.invoke(data, { signal });
    return null;
  };
}

export interface LoadRow {
  seq: number;
  /** When it was due, ms from the run's start (closed loop: when it was sent). */
  dueMs: number;
  /** Sent this long after it was due; a large lag means the generator fell behind. */
  lagMs: number;
  /** Sent until the reply arrived, as the client saw it. */
  latencyMs: number;
  status: "ok" | "error";
  /** How the daemon found it an instance; null for an error, and for every request to an address (unknown). */
  start: StartKind | null;
  instance: string | null;
  /** The daemon's time from arrival to reply. */
  serverMs: number | null;
  /** Waiting for an instance (for a cold start: until its start began). */
  queueMs: number | null;
  /** Starting the instance this request waited for (cold starts only). */
  startMs: number | null;
  invokeMs: number | null;
  /** The error's code (ERR_...), or "timeout". */
  error: string | null;
}

export interface LoadOptions {
  shape: LoadShape;
  durationMs: number;
  /** A request without a reply after this long is abandoned and counted as an error. */
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface LoadReport {
  experiment: "load";
  /** The daemon's URL, or the function's address (--url: grpc://host:port, http://host:port/path). */
  url: string;
  function: string;
  /**
   * The deployment as the daemon had it when the run began; null for a function behind an
   * address, which vhive knows nothing of but how to call it.
   */
  deployment: Pick<FunctionRecord, "imageRef" | "memMib" | "vcpus" | "start" | "keepaliveMs" | "minInstances" | "maxInstances" | "concurrency"> | null;
  /** The gRPC method called at an address (absent on a daemon, and for HTTP). */
  method?: string;
  accel: string | null;
  startedAt: string;
  arrival: Arrival | "closed";
  rps: number | null;
  seed: number | null;
  clients: number | null;
  durationMs: number;
  timeoutMs: number;
  /** The request data (null: the daemon's function's default request). */
  data: string | null;
  rows: LoadRow[];
}

/** Send times in ms from the start, all before `durationMs`. */
export function arrivalTimes(arrival: Arrival, rps: number, durationMs: number, random: () => number): number[] {
  if (!(rps > 0)) throw new VhiveError("ERR_VALIDATION", `--rps ${rps}: expected a rate above 0 requests per second`);
  const meanGapMs = 1000 / rps;
  const gap = arrival === "uniform" ? () => meanGapMs : () => -Math.log(1 - random()) * meanGapMs;
  const times: number[] = [];
  for (let t = arrival === "uniform" ? 0 : gap(); t < durationMs; t += gap()) times.push(t);
  return times;
}

/** One timed request due `dueMs` after `runStart`, as a row; never throws (an error is a row too). */
export async function sendOne(target: LoadTarget, seq: number, dueMs: number, runStart: number, options: Pick<LoadOptions, "timeoutMs" | "signal">): Promise<LoadRow> {
  const sent = performance.now();
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const base = { seq, dueMs: roundMs(dueMs), lagMs: roundMs(Math.max(0, sent - runStart - dueMs)) };
  try {
    const reply = await target(signal);
    if (reply === null) {
      const unknown = { start: null, instance: null, serverMs: null, queueMs: null, startMs: null, invokeMs: null };
      return { ...base, latencyMs: roundMs(performance.now() - sent), status: "ok", ...unknown, error: null };
    }
    const queueMs = reply.breakdown.queueMs ?? null;
    const invokeMs = reply.breakdown.invokeMs ?? null;
    const cold = reply.start !== "warm";
    return {
      ...base,
      latencyMs: roundMs(performance.now() - sent),
      status: "ok",
      start: reply.start,
      instance: reply.instance,
      serverMs: reply.totalMs,
      queueMs,
      startMs: cold ? roundMs(reply.totalMs - (queueMs ?? 0) - (invokeMs ?? 0)) : null,
      invokeMs,
      error: null,
    };
  } catch (error) {
    const code = timeout.aborted && !options.signal?.aborted ? "timeout" : isVhiveError(error) ? error.code : messageOf(error);
    return { ...base, latencyMs: roundMs(performance.now() - sent), status: "error", start: null, instance: null, serverMs: null, queueMs: null, startMs: null, invokeMs: null, error: code };
  }
}

/** Drive the target for `durationMs`, then wait for every request still out; rows in send order. */
export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadRow[]> {
  const { shape, durationMs, signal } = options;
  const runStart = performance.now();
  const pending: Promise<LoadRow>[] = [];
  let answered = 0;
  let failed = 0;
  const track = (row: Promise<LoadRow>) => {
    pending.push(
      row.then((done) => {
        answered++;
        if (done.status === "error") failed++;
        return done;
      }),
    );
  };
  const ticker = setInterval(() => {
    const elapsedS = Math.min(durationMs, performance.now() - runStart) / 1000;
    options.onProgress?.(Math.floor(elapsedS), Math.ceil(durationMs / 1000), `s, ${answered} answered, ${failed} failed, ${pending.length - answered} in flight`);
  }, 500);
  try {
    if (shape.kind === "open") {
      const times = arrivalTimes(shape.arrival, shape.rps, durationMs, seededRandom(shape.seed));
      for (const [seq, dueMs] of times.entries()) {
        const wait = runStart + dueMs - performance.now();
        if (wait > 1) await sleep(wait, undefined, { signal }).catch(() => {}); // cancelled: checked next
        if (signal?.aborted) break;
        track(sendOne(target, seq, dueMs, runStart, options));
      }
    } else {
      let seq = 0;
      const client = async () => {
        while (!signal?.aborted && performance.now() - runStart < durationMs) {
          const row = sendOne(target, seq++, performance.now() - runStart, runStart, options);
          track(row);
          await row;
        }
      };
      await Promise.all(Array.from({ length: shape.clients }, client));
    }
    const rows = await Promise.all(pending);
    if (signal?.aborted) throw new VhiveError("ERR_ABORTED", `the load run was cancelled after ${rows.length} requests`);
    return rows.sort((a, b) => a.seq - b.seq);
  } finally {
    clearInterval(ticker);
  }
}

export interface LatencyFigures {
  /** "all", or one start kind. */
  start: StartKind | "all";
  requests: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Median time starting an instance (cold kinds only). */
  startMs: number | null;
  /** Median time waiting for an instance. */
  queueMs: number | null;
}

export interface LoadSummary {
  sent: number;
  ok: number;
  errors: Record<string, number>;
  offeredRps: number | null;
  /** Replies per second over the run (first send to last reply). */
  achievedRps: number;
  maxLagMs: number;
  /** "all" first, then each start kind seen, most frequent first. */
  latency: LatencyFigures[];
}

function figures(start: StartKind | "all", rows: readonly LoadRow[]): LatencyFigures {
  const latencies = rows.map((row) => row.latencyMs).sort((a, b) => a - b);
  const starts = rows.flatMap((row) => (row.startMs === null ? [] : [row.startMs]));
  const queues = rows.flatMap((row) => (row.queueMs === null ? [] : [row.queueMs]));
  return {
    start,
    requests: rows.length,
    p50: percentileOfSorted(latencies, 50),
    p90: percentileOfSorted(latencies, 90),
    p99: percentileOfSorted(latencies, 99),
    max: latencies[latencies.length - 1]!,
    startMs: starts.length > 0 ? median(starts) : null,
    queueMs: queues.length > 0 ? median(queues) : null,
  };
}

/** "ERR_CAPACITY x3" per error code, for text and tables. */
export function describeErrors(errors: Record<string, number>): string[] {
  return Object.entries(errors).map(([code, count]) => `${code} x${count}`);
}

/**
 * One pass over the rows, not Math.max(...rows): an hour's run at a few hundred req/s has more
 * rows than a call can take arguments.
 */
export function summarizeLoad(report: LoadReport): LoadSummary {
  const ok: LoadRow[] = [];
  const errors: Record<string, number> = {};
  const kinds = new Map<StartKind, LoadRow[]>();
  let spanMs = report.durationMs;
  let maxLagMs = 0;
  for (const row of report.rows) {
    spanMs = Math.max(spanMs, row.dueMs + row.lagMs + row.latencyMs);
    maxLagMs = Math.max(maxLagMs, row.lagMs);
    if (row.error !== null) errors[row.error] = (errors[row.error] ?? 0) + 1;
    if (row.status !== "ok") continue;
    ok.push(row);
    if (!row.start) continue;
    const same = kinds.get(row.start);
    if (same) same.push(row);
    else kinds.set(row.start, [row]);
  }
  const byKind = [...kinds.entries()].sort((a, b) => b[1].length - a[1].length).map(([kind, rows]) => figures(kind, rows));
  return {
    sent: report.rows.length,
    ok: ok.length,
    errors,
    offeredRps: report.rps,
    achievedRps: ok.length / (spanMs / 1000),
    maxLagMs,
    latency: ok.length > 0 ? [figures("all", ok), ...byKind] : [],
  };
}
