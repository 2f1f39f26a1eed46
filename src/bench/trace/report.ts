/**
 * The report's section for trace replays: every run in the output directory side by side (one
 * per keep-alive setting, e.g. fixed-10m, fixed-20m, hybrid), beside the paper's finding, then
 * each run per function; charts of cold-start share against memory-time (the paper's trade-off)
 * and of cold-start share per function. Rows as CSV, one line per request.
 */
import type { TopLevelSpec } from "vega-lite";
import { toCsv } from "../csv.js";
import { fmtMs, fmtPct, markdownTable } from "../report.js";
import type { TraceReport, TraceRow } from "./replay.js";
import { summarizeTrace, type TraceFigures } from "./summary.js";

const CONFIG = { background: "white", legend: { labelLimit: 0 } };

/** What the paper found (Shahrad et al., ATC'20, section 4.3 and Figure 15), in words. */
export const PAPER_TRACE_FINDING =
  "Shahrad et al. (ATC'20) simulated the whole Azure workload: fixed keep-alive trades memory for cold starts along one curve, and the hybrid histogram policy sits below it, " +
  "with fewer cold starts at equal or lower memory (wasted memory time) than any fixed keep-alive; its 4-hour histogram range cut cold starts most, and the policy also runs in their OpenWhisk implementation.";

const fmtRatio = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : "");
const fmtGibS = (x: number) => x.toFixed(x < 10 ? 2 : 0);

function startsText(f: TraceFigures): string {
  return Object.entries(f.starts)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
}

function describeRun(r: TraceReport): string {
  const d = r.deployment;
  return (
    `\`${r.label}\` (${d.keepalivePolicy === "fixed" ? `fixed keep-alive ${d.keepaliveMs / 1000} s` : "hybrid histogram policy"}): ${r.functions.length} functions sampled (seed ${r.seed}, best of ${r.sample.trials} candidates, ` +
    `distance ${r.sample.score.mean.toFixed(3)} against the median candidate's ${r.sample.medianCandidateScore.toFixed(3)}) from ${r.sample.population} invoked in minutes ${r.startMinute}..${r.startMinute + r.minutes - 1} of day ${r.day} of the trace in ${r.traceDir}, ` +
    `counts scaled by ${r.scale}; start policy ${d.start}, ${d.memMib} MiB guests, runtimes capped at ${d.maxRuntimeMs} ms and memory at ${d.maxMemoryMib} MiB; on ${r.url}${r.accel ? ` (${r.accel})` : ""} from ${r.startedAt} to ${r.endedAt}.`
  );
}

export function traceSection(reports: readonly TraceReport[]): { markdown: string; charts: { file: string; alt: string; spec: TopLevelSpec }[] } {
  const runs = reports.map((report) => ({ report, figures: summarizeTrace(report) }));
  const side = markdownTable(
    ["keep-alive", "requests", "errors", "cold-start share", "starts", "memory-time GiB-s", "instances (pre-warmed)", "p50 ms", "p99 ms", "slowdown p50", "slowdown p99"],
    runs.map(({ report, figures: [all] }) => [
      report.label,
      String(all!.sent),
      String(all!.errors),
      fmtPct(all!.coldShare),
      startsText(all!),
      fmtGibS(all!.memoryGibS),
      `${all!.instances} (${all!.prewarmed})`,
      fmtMs(all!.p50Ms),
      fmtMs(all!.p99Ms),
      fmtRatio(all!.slowdownP50),
      fmtRatio(all!.slowdownP99),
    ]),
  );
  const perRun = runs.flatMap(({ report, figures }) => [
    `### ${report.label}`,
    "",
    describeRun(report),
    "",
    markdownTable(
      ["function", "trace function (app/function hash)", "trigger", "requests", "cold-start share", "starts", "memory-time GiB-s", "p50 ms", "p99 ms", "slowdown p50"],
      figures.slice(1).map((f) => {
        const info = report.functions.find((fn) => fn.name === f.function)!;
        return [f.function, `${info.key.slice(0, 8)}../${info.key.split("/")[1]!.slice(0, 8)}..`, info.trigger, String(f.sent), fmtPct(f.coldShare), startsText(f), fmtGibS(f.memoryGibS), fmtMs(f.p50Ms), fmtMs(f.p99Ms), fmtRatio(f.slowdownP50)];
      }),
    ),
    "",
  ]);
  const markdown = [
    "## Trace replay",
    "",
    "Requests replayed as an open loop from files in the Azure Functions trace 2019's format, the real trace's or a synthetic day `vhive bench trace-synth` wrote (each run below names its directory): " +
      "per-minute counts of the sampled functions, arrivals spread uniformly within each minute, execution time and memory drawn from each function's percentiles. " +
      "Cold-start share: answered requests that waited for an instance to start. Memory-time: GiB-seconds of instances alive (guest memory reserved) during the run. Slowdown: latency over the execution time asked for.",
    "",
    side,
    "",
    PAPER_TRACE_FINDING,
    "",
    "![cold-start share against memory-time](trace-tradeoff.svg)",
    "",
    "![cold-start share per function](trace-coldstarts.svg)",
    "",
    ...perRun,
  ].join("\n");
  return {
    markdown,
    charts: [
      { file: "trace-tradeoff.svg", alt: "cold-start share against memory-time", spec: tradeoffChart(runs) },
      { file: "trace-coldstarts.svg", alt: "cold-start share per function", spec: coldstartsChart(runs) },
    ],
  };
}

function tradeoffChart(runs: readonly { report: TraceReport; figures: TraceFigures[] }[]): TopLevelSpec {
  const values = runs.map(({ report, figures: [all] }) => ({ run: report.label, gibS: all!.memoryGibS, cold: all!.coldShare }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Cold starts against memory, per keep-alive setting", subtitle: "lower left is better; the paper's hybrid policy lies below fixed keep-alive's curve" },
    data: { values },
    layer: [
      { mark: { type: "point", filled: true, size: 90, tooltip: true }, encoding: { x: { field: "gibS", type: "quantitative", title: "memory-time (GiB-s)" }, y: { field: "cold", type: "quantitative", axis: { format: "%" }, title: "cold-start share" }, color: { field: "run", type: "nominal", title: "keep-alive" } } },
      { mark: { type: "text", dx: 8, align: "left" }, encoding: { x: { field: "gibS", type: "quantitative" }, y: { field: "cold", type: "quantitative" }, text: { field: "run" } } },
    ],
    width: 420,
    height: 260,
    config: CONFIG,
  };
}

function coldstartsChart(runs: readonly { report: TraceReport; figures: TraceFigures[] }[]): TopLevelSpec {
  const values = runs.flatMap(({ report, figures }) => figures.slice(1).map((f) => ({ run: report.label, function: f.function, cold: f.coldShare })));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "Cold-start share per function",
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: "function", type: "nominal", title: null, axis: { labelAngle: -40 } },
      xOffset: { field: "run", type: "nominal" },
      y: { field: "cold", type: "quantitative", axis: { format: "%" }, scale: { domain: [0, 1] }, title: "cold-start share" },
      color: { field: "run", type: "nominal", title: "keep-alive" },
    },
    width: { step: 36 },
    height: 240,
    config: CONFIG,
  };
}

/** Trace rows as CSV, one line per request in due order. */
export function traceRowsCsv(rows: readonly TraceRow[]): string {
  const header = ["seq", "function", "dueMs", "lagMs", "latencyMs", "status", "start", "instance", "serverMs", "queueMs", "startMs", "invokeMs", "drawnMs", "runtimeMs", "drawnMib", "memoryMib", "slowdown", "error"] as const;
  return toCsv(header, rows.map((row) => header.map((key) => row[key])));
}
