/**
 * The report's charts: Vega-Lite specs built from summaries, compiled with vega-lite and
 * rendered to SVG by vega's View in Node (renderer "none": SVG needs no canvas, text is measured
 * by estimate). Each spec takes its data inline, so the SVG stands alone.
 */
import type { TopLevelSpec } from "vega-lite";
import type { StartKind } from "../store/index.js";
import type { DensitySummary } from "./density.js";
import type { LoadRow } from "./load.js";
import { PAPER_CONCURRENCY, PAPER_FACTS, paperFunction, paperLatencyMs } from "./paper.js";
import type { ReuseFunctionResult } from "./reuse.js";
import { BENCH_MODES, isRestoreMode, type ModeSummary } from "./rows.js";

const MIB = 1024 * 1024;
const MB = 1_000_000;
/** White behind the chart (the SVG may be viewed on a dark page); legend labels never cut short. */
const SOURCES = ["vhive", "paper (KVM)"];
const CONFIG = { background: "white", legend: { labelLimit: 0 } };

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Loaded here, not at the top: every vhive command imports the bench commands, and vega takes
  // ~0.3 s to load.
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Median time to first response per function and mode, vhive's bars beside the paper's (log scale). */
export function latencyChart(summaries: readonly ModeSummary[]): TopLevelSpec {
  const alone = summaries.filter((s) => s.concurrency === 1);
  const values = alone.flatMap((s) => {
    const paper = paperLatencyMs(s.function, s.mode);
    return [
      { function: s.function, mode: s.mode, source: "vhive", ms: s.totalMs.median },
      ...(paper === undefined ? [] : [{ function: s.function, mode: s.mode, source: "paper (KVM)", ms: paper }]),
    ];
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "Cold-start latency by mode (median, ms, log scale)",
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      // Wrapped, in the bench's order, so the whole suite fits a page: five functions a row.
      facet: { field: "function", type: "nominal", title: null, columns: 5, sort: [...new Set(alone.map((s) => s.function))] },
      x: { field: "mode", type: "nominal", sort: [...BENCH_MODES], title: null, axis: { labelAngle: -40 } },
      xOffset: { field: "source", type: "nominal", sort: SOURCES },
      y: { field: "ms", type: "quantitative", scale: { type: "log" }, stack: null, title: "ms" },
      color: { field: "source", type: "nominal", sort: SOURCES, title: null },
    },
    width: { step: 22 },
    height: 260,
    config: CONFIG,
  };
}

/**
 * A phase as the chart shows it. The floor's memoryWaitMs is its pager installing every page
 * before QEMU maps guest RAM, which its totalMs leaves out: leave it out here too.
 */
function phaseMs(s: ModeSummary, phase: string): number {
  return s.mode === "floor" && phase === "memoryWaitMs" ? 0 : s.breakdown[phase]!;
}

/** Median phases of each restore mode, stacked, one row of bars per function. */
export function breakdownChart(summaries: readonly ModeSummary[]): TopLevelSpec {
  const phasesOrder = ["loadVmmMs", "restoreMs", "memoryWaitMs", "resumeMs", "reseedMs", "connectMs", "functionMs"];
  const values = summaries
    .filter((s) => s.concurrency === 1 && isRestoreMode(s.mode))
    .flatMap((s) => phasesOrder.filter((phase) => phase in s.breakdown).map((phase) => ({ function: s.function, mode: s.mode, phase, order: phasesOrder.indexOf(phase), ms: phaseMs(s, phase) })));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Where a restore's time goes (median per phase, ms)", subtitle: "floor: loading its pages before QEMU maps memory left out, as in its total; pool modes: QEMU was started before, no loadVmmMs" },
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      row: { field: "function", type: "nominal", title: null, sort: [...new Set(values.map((v) => v.function))] },
      y: { field: "mode", type: "nominal", sort: [...BENCH_MODES], title: null },
      x: { field: "ms", type: "quantitative", stack: "zero", title: "ms" },
      color: { field: "phase", type: "nominal", sort: phasesOrder, title: "phase" },
      order: { field: "order", type: "quantitative" },
    },
    width: 480,
    resolve: { scale: { x: "independent" } },
    config: CONFIG,
  };
}

export interface WsSize {
  function: string;
  wsBytes: number;
  /** Guest memory the function touched at all, bytes (from the reuse experiment). */
  touchedBytes?: number;
}

const WS_SERIES = ["vhive working set", "paper working set", "vhive guest memory touched"];

/** Working-set size per function: vhive's (MiB) beside the paper's (MB), and what the guest touched. */
export function wsChart(sizes: readonly WsSize[]): TopLevelSpec {
  const values = sizes.flatMap((s) => {
    const paper = paperFunction(s.function);
    return [
      { function: s.function, series: "vhive working set", mb: s.wsBytes / MIB },
      ...(s.touchedBytes === undefined ? [] : [{ function: s.function, series: "vhive guest memory touched", mb: s.touchedBytes / MIB }]),
      ...(paper ? [{ function: s.function, series: "paper working set", mb: (paper.wsMb * MB) / MIB }] : []),
    ];
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "Working-set size (MiB)",
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: "function", type: "nominal", title: null, axis: { labelAngle: 0 } },
      xOffset: { field: "series", type: "nominal", sort: WS_SERIES },
      y: { field: "mb", type: "quantitative", title: "MiB" },
      color: { field: "series", type: "nominal", sort: WS_SERIES, title: null },
    },
    width: { step: 30 },
    height: 240,
    config: CONFIG,
  };
}

/** A working set's bytes on disk in one encoding (or "format 2": every page stored raw). */
export interface WsDiskBar {
  function: string;
  encoding: string;
  bytes: number;
}

/** Working-set bytes on disk per function and encoding, beside format 2's (every page raw). */
export function wsDiskChart(bars: readonly WsDiskBar[]): TopLevelSpec {
  const encodings = [...new Set(bars.map((bar) => bar.encoding))];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Working set on disk (MiB)", subtitle: "format 2: every page stored raw; format 3: zero pages left out, blocks raw or compressed" },
    data: { values: bars.map((bar) => ({ ...bar, mib: bar.bytes / MIB })) },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: "function", type: "nominal", title: null, axis: { labelAngle: 0 } },
      xOffset: { field: "encoding", type: "nominal", sort: encodings },
      y: { field: "mib", type: "quantitative", title: "MiB" },
      color: { field: "encoding", type: "nominal", sort: encodings, title: null },
    },
    width: { step: 24 },
    height: 240,
    config: CONFIG,
  };
}

/** Median latency against concurrent cold starts, per mode; the paper's helloworld curve dashed. */
export function concurrencyChart(fn: string, summaries: readonly ModeSummary[]): TopLevelSpec {
  const ours = summaries.map((s) => ({ level: s.concurrency, mode: s.mode, source: "vhive", ms: s.totalMs.median }));
  const levels = [...new Set(ours.map((v) => v.level))].sort((a, b) => a - b);
  const maxLevel = Math.max(...levels, 1);
  const paper =
    fn === "helloworld"
      ? PAPER_CONCURRENCY.filter((p) => p.level <= maxLevel).flatMap((p) => [
          { level: p.level, mode: "vanilla", source: "paper (KVM)", ms: p.vanillaMs },
          { level: p.level, mode: "prefetch", source: "paper (KVM)", ms: p.reapMs },
        ])
      : [];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `Concurrent cold starts of ${fn} (median per start, ms)`, subtitle: fn === "helloworld" ? "solid: vhive; dashed: the paper's vanilla and REAP (= prefetch), Firecracker under KVM" : "the paper measured this curve for helloworld only" },
    data: { values: [...ours, ...paper] },
    mark: { type: "line", point: true, tooltip: true },
    encoding: {
      x: { field: "level", type: "quantitative", scale: { type: "log", base: 2 }, axis: { values: levels, format: "d" }, title: "cold starts at once" },
      y: { field: "ms", type: "quantitative", title: "ms" },
      color: { field: "mode", type: "nominal", sort: [...BENCH_MODES], title: "mode" },
      strokeDash: { field: "source", type: "nominal", sort: SOURCES, legend: null },
      detail: { field: "source", type: "nominal" },
    },
    width: 420,
    height: 260,
    config: CONFIG,
  };
}

/** Share of pages two recordings have in common, per function, against the paper's 97%. */
export function reuseChart(results: readonly ReuseFunctionResult[]): TopLevelSpec {
  const values = results.flatMap((r) => [
    { function: r.function, comparison: "|A∩B| / |A|", share: r.aVsB.shareOfA },
    { function: r.function, comparison: "|A∩B| / |B|", share: r.aVsB.shareOfB },
    { function: r.function, comparison: "|A∩A'| / |A| (same input again)", share: r.aVsA2.shareOfA },
  ]);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "Working-set pages in common across inputs", subtitle: `dashed: the paper's ${Math.round(PAPER_FACTS.reuseShareMost * 100)}%, reached by 7 of 10 functions` },
    layer: [
      {
        data: { values },
        mark: { type: "bar", tooltip: true },
        encoding: {
          x: { field: "function", type: "nominal", title: null, axis: { labelAngle: 0 } },
          xOffset: { field: "comparison", type: "nominal" },
          y: { field: "share", type: "quantitative", axis: { format: "%" }, scale: { domain: [0, 1] }, title: "share of pages" },
          color: { field: "comparison", type: "nominal", title: null },
        },
      },
      {
        data: { values: [{ share: PAPER_FACTS.reuseShareMost }] },
        mark: { type: "rule", strokeDash: [4, 4], color: "black" },
        encoding: { y: { field: "share", type: "quantitative" } },
      },
    ],
    width: { step: 30 },
    height: 240,
    config: CONFIG,
  };
}

/** Start kinds in the order a REAP deployment meets them. */
const START_KINDS: readonly StartKind[] = ["boot", "vanilla", "record", "prefetch", "warm"];

/** Each request's latency over the run, coloured by how it got its instance (log scale). */
export function loadChart(fn: string, rows: readonly LoadRow[]): TopLevelSpec {
  // A function behind an address reports no start kind.
  const values = rows.filter((row) => row.status === "ok").map((row) => ({ t: row.dueMs / 1000, ms: Math.max(row.latencyMs, 0.1), start: row.start ?? "unknown" }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `${fn} under load: latency of each request (ms, log scale)`, subtitle: "x: when it was sent; colour: how the daemon found it an instance" },
    data: { values },
    mark: { type: "point", filled: true, size: 18, tooltip: true },
    encoding: {
      x: { field: "t", type: "quantitative", title: "s since the run began" },
      y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "ms" },
      color: { field: "start", type: "nominal", sort: [...START_KINDS, "unknown"], title: "start" },
    },
    width: 520,
    height: 260,
    config: CONFIG,
  };
}

/** A ratio with its 95% interval, in a group (a function, or a number of starts at once). */
export interface RatioPoint {
  group: string;
  ratio: string;
  estimate: number;
  low: number | null;
  high: number | null;
}

/** Each ratio as a point with its 95% interval as a bar, one panel per group; dashed: 1 (no difference). */
export function ratioChart(title: string, points: readonly RatioPoint[]): TopLevelSpec {
  const groups = [...new Set(points.map((p) => p.group))];
  const ratios = [...new Set(points.map((p) => p.ratio))];
  const x = { field: "ratio", type: "nominal", sort: ratios, title: null, axis: { labelAngle: -40 } } as const;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle: "point: median over median; bar: its 95% interval (bootstrap over the interleaved rounds); dashed: 1" },
    data: { values: points.filter((p) => Number.isFinite(p.estimate)) },
    facet: { field: "group", type: "nominal", title: null, sort: groups },
    columns: 5,
    spec: {
      layer: [
        { mark: { type: "rule", strokeDash: [4, 4], color: "gray" }, encoding: { y: { datum: 1, type: "quantitative" } } },
        {
          transform: [{ filter: "isValid(datum.low) && isValid(datum.high)" }],
          mark: { type: "rule", strokeWidth: 2 },
          encoding: { x, y: { field: "low", type: "quantitative", title: "ratio" }, y2: { field: "high" }, color: { field: "ratio", type: "nominal", sort: ratios, title: null } },
        },
        {
          mark: { type: "point", filled: true, size: 50, tooltip: true },
          encoding: { x, y: { field: "estimate", type: "quantitative", title: "ratio", scale: { zero: false } }, color: { field: "ratio", type: "nominal", sort: ratios, title: null } },
        },
      ],
      width: { step: 34 },
      height: 200,
    },
    config: CONFIG,
  };
}

const DENSITY_PARTS = ["guest RAM: private copies (anonymous)", "guest RAM: shared page cache (PSS)", "QEMU outside guest RAM", "QEMU (guest RAM not told apart)", "pager"];

/** PSS per idle instance per mode, split into guest RAM (private, shared page cache), the rest of QEMU and the pager. */
export function densityChart(fn: string, instances: number, summaries: readonly DensitySummary[]): TopLevelSpec {
  const values = summaries.flatMap((s) => {
    const parts: [string, number | null][] =
      s.guestPssBytes === null
        ? [[DENSITY_PARTS[3]!, s.pssBytes - (s.pagerPssBytes ?? 0)]]
        : [
            [DENSITY_PARTS[0]!, s.guestAnonBytes],
            [DENSITY_PARTS[1]!, s.guestPageCachePssBytes],
            [DENSITY_PARTS[2]!, s.otherPssBytes],
          ];
    parts.push([DENSITY_PARTS[4]!, s.pagerPssBytes]);
    return parts.filter(([, bytes]) => bytes !== null && bytes > 0).map(([part, bytes]) => ({ mode: s.mode, part, order: DENSITY_PARTS.indexOf(part), mib: bytes! / MIB }));
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `${instances} idle instances of ${fn}: memory per instance (PSS, MiB, median)`, subtitle: "PSS splits a shared page among the processes that map it: vanilla's page-cache pages count 1/N in each" },
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      y: { field: "mode", type: "nominal", sort: summaries.map((s) => s.mode), title: null },
      x: { field: "mib", type: "quantitative", stack: "zero", title: "MiB per instance" },
      color: { field: "part", type: "nominal", sort: DENSITY_PARTS, title: null },
      order: { field: "order", type: "quantitative" },
    },
    width: 480,
    config: CONFIG,
  };
}

/** What a pooled VMM held while it waited, per function and pool mode: PSS and private bytes (MiB, median). */
export function poolMemoryChart(summaries: readonly ModeSummary[]): TopLevelSpec {
  const values = summaries
    .filter((s) => s.concurrency === 1 && s.poolIdlePssBytes != null)
    .flatMap((s) => [
      { function: s.function, mode: s.mode, measure: "PSS", mib: s.poolIdlePssBytes! / MIB },
      { function: s.function, mode: s.mode, measure: "private", mib: (s.poolIdlePrivateBytes ?? 0) / MIB },
    ]);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: "A pooled VMM while it waits: QEMU and its pager (MiB, median)", subtitle: "pool: no guest page yet; pool-installed: the working set installed" },
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      row: { field: "function", type: "nominal", title: null },
      y: { field: "mode", type: "nominal", sort: [...BENCH_MODES], title: null },
      yOffset: { field: "measure", type: "nominal", sort: ["PSS", "private"] },
      x: { field: "mib", type: "quantitative", title: "MiB" },
      color: { field: "measure", type: "nominal", sort: ["PSS", "private"], title: null },
    },
    width: 420,
    config: CONFIG,
  };
}
