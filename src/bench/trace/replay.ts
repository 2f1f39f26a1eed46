/**
 * Replaying a planned trace against deployed functions: an open loop over every function at
 * once, each request sent at its due time whether or not earlier ones have answered (as
 * `vhive bench load` does, and with its timed request), so a cold start shows as latency and
 * never lowers the offered rate.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { roundMs } from "../../metrics/index.js";
import type { InstanceLifetime } from "../../orchestrator/index.js";
import { VhiveError } from "../../shared/errors.js";
import type { KeepalivePolicyName, StartPolicy } from "../../store/index.js";
import type { ProgressListener } from "../experiments.js";
import { sendOne, type LoadReply, type LoadRow } from "../load.js";
import type { PlannedRequest } from "./plan.js";
import type { SampleScore } from "./sample.js";

export interface TraceRow extends LoadRow {
  /** The deployed function the request went to. */
  function: string;
  /** Execution time drawn from the trace and asked for (capped), ms; memory likewise, MiB. */
  drawnMs: number;
  runtimeMs: number;
  drawnMib: number;
  memoryMib: number;
  /** Latency over the execution time asked for (1 = no overhead at all). */
  slowdown: number | null;
}

/** One sampled trace function and the vhive function it was deployed as. */
export interface TraceFunctionInfo {
  name: string;
  /** HashApp/HashFunction in the trace. */
  key: string;
  trigger: string;
  /** Invocations in the replayed window, before scaling. */
  invocations: number;
  averageMs: number;
  averageMb: number;
}

export interface TraceReport {
  experiment: "trace";
  /** The keep-alive setting, e.g. "fixed-10m" or "hybrid": names the run's files. */
  label: string;
  url: string;
  accel: string | null;
  traceDir: string;
  day: number;
  startMinute: number;
  minutes: number;
  scale: number;
  seed: number;
  /** Minutes before the window whose idle times the hybrid policy learnt at deploy (0: none). */
  historyMinutes: number;
  sample: { size: number; trials: number; population: number; score: SampleScore; medianCandidateScore: number };
  deployment: { image: string; start: StartPolicy; keepalivePolicy: KeepalivePolicyName; keepaliveMs: number; memMib: number; maxRuntimeMs: number; maxMemoryMib: number };
  functions: TraceFunctionInfo[];
  /** Wall-clock bounds of the run (memory-time is counted within them). */
  startedAt: string;
  endedAt: string;
  timeoutMs: number;
  lifetimes: InstanceLifetime[];
  rows: TraceRow[];
}

/** Invokes a deployed function with request data; rejects with a VhiveError on an error answer. */
export type TraceInvoke = (fn: string, data: string, signal: AbortSignal) => Promise<LoadReply>;

export interface ReplayOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** The request data the trace function (functions/trace_func) takes. */
export function requestData(request: Pick<PlannedRequest, "runtimeMs" | "memoryMib">): string {
  return JSON.stringify({ runtimeInMilliSec: request.runtimeMs, memoryInMebiBytes: request.memoryMib });
}

/** Send every planned request at its time; rows in due order once every reply is in. */
export async function replay(requests: readonly PlannedRequest[], names: readonly string[], invoke: TraceInvoke, options: ReplayOptions): Promise<TraceRow[]> {
  const runStart = performance.now();
  const totalS = Math.ceil((requests[requests.length - 1]?.dueMs ?? 0) / 1000);
  const pending: Promise<TraceRow>[] = [];
  let answered = 0;
  let failed = 0;
  const ticker = setInterval(() => {
    const elapsedS = Math.min(totalS, Math.floor((performance.now() - runStart) / 1000));
    options.onProgress?.(elapsedS, totalS, `s, ${pending.length} sent, ${answered} answered, ${failed} failed`);
  }, 500);
  try {
    for (const [seq, request] of requests.entries()) {
      const wait = runStart + request.dueMs - performance.now();
      if (wait > 1) await sleep(wait, undefined, { signal: options.signal }).catch(() => {}); // cancelled: checked next
      if (options.signal?.aborted) break;
      const name = names[request.fn]!;
      const data = requestData(request);
      const row = sendOne((signal) => invoke(name, data, signal), seq, request.dueMs, runStart, options).then((done): TraceRow => {
        answered++;
        if (done.status === "error") failed++;
        const { drawnMs, runtimeMs, drawnMib, memoryMib } = request;
        return { ...done, function: name, drawnMs, runtimeMs, drawnMib, memoryMib, slowdown: done.status === "ok" ? roundMs(done.latencyMs / runtimeMs) : null };
      });
      pending.push(row);
    }
    const rows = await Promise.all(pending);
    if (options.signal?.aborted) throw new VhiveError("ERR_ABORTED", `the trace replay was cancelled after ${rows.length} of ${requests.length} requests`);
    return rows;
  } finally {
    clearInterval(ticker);
  }
}
