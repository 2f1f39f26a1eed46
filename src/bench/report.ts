/**
 * Results on disk and the report made from them. An output directory holds each experiment's
 * rows and the report over all of them:
 *
 *   <out>/coldstart.json, coldstart.csv       `vhive bench coldstart` (one row per start)
 *   <out>/concurrency.json, concurrency.csv   `vhive bench concurrency`
 *   <out>/reuse.json, reuse.csv               `vhive bench reuse` (one row per function)
 *   <out>/load.json, load.csv                 `vhive bench load` (one row per request)
 *   <out>/trace-<keep-alive>.json, .csv       `vhive bench trace`, one pair per keep-alive setting
 *   <out>/density.json, density.csv           `vhive bench density` (one row per idle instance)
 *   <out>/ws/<function>-<A|B|A2>.index|trace  the working sets reuse compared
 *   <out>/report.md, <out>/*.svg              tables beside the paper's figures, and charts
 *
 * Writing an experiment rewrites report.md from every experiment's JSON in the directory, so
 * running several experiments with the same --out makes one report.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { cpus, release } from "node:os";
import { join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { breakdownChart, concurrencyChart, densityChart, latencyChart, loadChart, poolMemoryChart, ratioChart, renderSvg, reuseChart, wsChart, wsDiskChart, type RatioPoint, type WsDiskBar, type WsSize } from "./charts.js";
import { benchRowsCsv, densityRowsCsv, loadRowsCsv, toCsv } from "./csv.js";
import { summarizeDensity, type DensityReport } from "./density.js";
import type { ColdStartBenchReport, ConcurrencyBenchReport } from "./experiments.js";
import { describeErrors, summarizeLoad, type LoadReport } from "./load.js";
import { PAPER_CONCURRENCY, PAPER_FACTS, paperFunction } from "./paper.js";
import type { ReuseReport } from "./reuse.js";
import type { AutoRepsRecord } from "./auto-reps.js";
import { benchRatios, formatBounds, formatHalfWidth, formatRatio, formatRatioWithInterval, ratioPairs, type RatioFigure } from "./ratios.js";
import { ALL_PHASES, findSummary, groupRows, isRestoreMode, PREFETCH_VARIANTS, summarizeRows, type BenchMode, type BenchRow, type ModeSummary, type PrefetchVariant } from "./rows.js";
import { isPoolMode } from "../start/instance.js";
import { correlation, median } from "./stats.js";
import { wsDiskFigures } from "./ws-disk.js";
import type { TraceReport } from "./trace/replay.js";
import { traceRowsCsv, traceSection } from "./trace/report.js";

/** Every experiment's results that a report can show. */
export interface ResultsBundle {
  coldstart?: ColdStartBenchReport;
  concurrency?: ConcurrencyBenchReport;
  reuse?: ReuseReport;
  load?: LoadReport;
  /** One replay per keep-alive setting, compared side by side. */
  trace?: TraceReport[];
  density?: DensityReport;
}

export type Experiment = Exclude<keyof ResultsBundle, "trace">;
export const EXPERIMENT_FILES: Record<Experiment, string> = { coldstart: "coldstart", concurrency: "concurrency", reuse: "reuse", load: "load", density: "density" };

export const REPORT_FILE = "report.md";

// ---- formatting -------------------------------------------------------------------------------

const MIB = 1024 * 1024;

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  return ms < 10 ? ms.toFixed(1) : ms.toFixed(0);
}

function fmtMib(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return "";
  return (bytes / MIB).toFixed(1);
}

export function fmtPct(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

// ---- sections ---------------------------------------------------------------------------------

interface Chart {
  file: string;
  alt: string;
  spec: TopLevelSpec;
}

interface Section {
  markdown: string;
  charts: Chart[];
}

/** The ratios of each group (function, or concurrency level) with their intervals, as one list for the table and the chart. */
function ratioTable(groupTitle: string, groups: readonly { group: string; figures: readonly RatioFigure[] }[]): string {
  return markdownTable(
    [groupTitle, "ratio", "figure", "95% interval", "±", "rounds"],
    groups.flatMap(({ group, figures }) => figures.map((f) => [group, f.label, formatRatio(f.estimate), formatBounds(f), formatHalfWidth(f), String(f.rounds)])),
  );
}

const ratioPoints = (groups: readonly { group: string; figures: readonly RatioFigure[] }[]): RatioPoint[] =>
  groups.flatMap(({ group, figures }) => figures.map((f) => ({ group, ratio: f.label, estimate: f.estimate, low: f.low, high: f.high })));

const fmtDuration = (ms: number) => (ms >= 60_000 ? `${Number((ms / 60_000).toFixed(1))} min` : `${Number((ms / 1000).toFixed(1))} s`);

/** How --reps auto chose the rounds, in words: its settings, then how each series ended. */
export function describeAuto(auto: AutoRepsRecord): string {
  const target = `±${Number((auto.targetShare * 100).toFixed(1))}%`;
  const outcomes = auto.outcomes.map((o) =>
    o.stoppedBy === "precise" ? `${o.series} ${o.rounds} (every ratio within ${target})` : `${o.series} ${o.rounds} (time cap reached; still wider: ${o.tooWide.join(", ")})`,
  );
  return `rounds chosen by --reps auto (at least ${auto.minRounds}, then more until every ratio's 95% interval is within ${target}, time cap ${fmtDuration(auto.maxTimeMs)}): ${outcomes.join("; ")}`;
}

/** The working set a function's cold starts used: prefetch's, else record's. */
function wsBytesOf(summaries: readonly ModeSummary[], fn: string): number | undefined {
  return findSummary(summaries, fn, "prefetch")?.wsBytes ?? findSummary(summaries, fn, "record")?.wsBytes ?? undefined;
}

export function coldStartSection(report: ColdStartBenchReport, reuse?: ReuseReport): Section {
  const summaries = summarizeRows(report.rows);
  const fns = report.functions.map((f) => f.function);
  const has = (mode: BenchMode) => report.modes.includes(mode);
  const ratios = fns.map((fn) => ({ group: fn, figures: benchRatios(report.rows, fn, 1, ratioPairs(report.modes)) }));
  const ratioCell = (fn: string, numerator: BenchMode, denominator: BenchMode) => {
    const figure = ratios.find((r) => r.group === fn)?.figures.find((f) => f.numerator === numerator && f.denominator === denominator);
    return figure ? formatRatioWithInterval(figure) : "";
  };

  // vhive beside the paper
  const header = ["function"];
  const columns: ((fn: string) => string)[] = [];
  const mode = (m: BenchMode, title: string = m) => {
    if (!has(m)) return;
    header.push(title);
    columns.push((fn) => fmtMs(findSummary(summaries, fn, m)?.totalMs.median));
  };
  const paperCol = (title: string, pick: (p: NonNullable<ReturnType<typeof paperFunction>>) => string) => {
    header.push(title);
    columns.push((fn) => {
      const paper = paperFunction(fn);
      return paper ? pick(paper) : "";
    });
  };
  mode("warm");
  if (has("warm")) paperCol("paper warm", (p) => String(p.warmMs));
  mode("boot");
  mode("vanilla", "vanilla (2 MiB faults)");
  mode("vanilla-4k");
  paperCol("paper vanilla", (p) => String(p.vanillaMs));
  mode("lazy");
  mode("record");
  mode("prefetch", "prefetch (REAP)");
  paperCol("paper REAP", (p) => String(p.reapMs));
  for (const variant of Object.keys(PREFETCH_VARIANTS) as PrefetchVariant[]) mode(variant);
  mode("floor");
  mode("pool");
  mode("pool-installed");
  if (has("prefetch")) {
    for (const base of ["vanilla", "vanilla-4k"] as const) {
      if (!has(base)) continue;
      header.push(`speedup ${base} / prefetch`);
      columns.push((fn) => ratioCell(fn, base, "prefetch"));
    }
  }
  paperCol("paper speedup", (p) => `${p.speedup}x`);
  if (has("record")) {
    const base: BenchMode | undefined = has("vanilla-4k") ? "vanilla-4k" : has("vanilla") ? "vanilla" : undefined;
    if (base) {
      header.push(`record / ${base}`);
      columns.push((fn) => ratioCell(fn, "record", base));
    }
  }
  if (has("prefetch") || has("record")) {
    header.push("WS MiB");
    columns.push((fn) => fmtMib(wsBytesOf(summaries, fn)));
  }
  paperCol("paper WS MB", (p) => String(p.wsMb));
  if (has("floor") && (has("prefetch") || has("record"))) {
    // The floor copies every non-zero page (its wsBytes): what the guest ever touched (the paper: 3-39% of the footprint).
    header.push("WS / touched");
    columns.push((fn) => {
      const ws = wsBytesOf(summaries, fn);
      const touched = findSummary(summaries, fn, "floor")?.wsBytes;
      return ws !== undefined && touched ? fmtPct(ws / touched) : "";
    });
  }
  const beside = markdownTable(header, fns.map((fn) => [fn, ...columns.map((column) => column(fn))]));

  const perMode = markdownTable(
    ["function", "mode", "median ms", "min .. max ms", "faults", "major faults", "read MiB", "pages recorded or installed, MiB", "fetch WS ms", "install WS ms", "reply"],
    summaries
      .filter((s) => s.concurrency === 1)
      .map((s) => [
        s.function,
        s.mode,
        fmtMs(s.totalMs.median),
        `${fmtMs(s.totalMs.min)} .. ${fmtMs(s.totalMs.max)}`,
        s.faults === null ? "" : String(s.faults),
        s.majorFaults === null ? "" : String(s.majorFaults),
        fmtMib(s.bytesRead),
        s.wsBytes ? fmtMib(s.wsBytes) : "",
        s.fetchWsMs ? fmtMs(s.fetchWsMs) : "",
        s.installWsMs ? fmtMs(s.installWsMs) : "",
        report.rows.find((row) => row.function === s.function && row.mode === s.mode)?.reply ?? "",
      ]),
  );

  const phases = ALL_PHASES.filter((phase) => summaries.some((s) => phase in s.breakdown));
  const breakdown = markdownTable(
    ["function", "mode", ...phases],
    summaries.filter((s) => s.concurrency === 1).map((s) => [s.function, s.mode, ...phases.map((phase) => fmtMs(s.breakdown[phase]))]),
  );

  const touched = new Map(reuse?.functions.map((f) => [f.function, f.touchedPages * f.pageSizeBytes]) ?? []);
  const sizes: WsSize[] = fns.flatMap((fn) => {
    const wsBytes = wsBytesOf(summaries, fn);
    return wsBytes === undefined ? [] : [{ function: fn, wsBytes, touchedBytes: touched.get(fn) }];
  });
  const disk = wsDiskSection(report.rows, summaries);
  const charts: Chart[] = [
    { file: "coldstart-latency.svg", alt: "cold-start latency by mode", spec: latencyChart(summaries) },
    ...(summaries.some((s) => isRestoreMode(s.mode)) ? [{ file: "coldstart-breakdown.svg", alt: "restore breakdown by phase", spec: breakdownChart(summaries) }] : []),
    ...(sizes.length > 0 ? [{ file: "ws-size.svg", alt: "working-set size", spec: wsChart(sizes) }] : []),
    ...disk.charts,
    ...(summaries.some((s) => s.poolIdlePssBytes != null) ? [{ file: "pool-memory.svg", alt: "a pooled VMM's memory while it waits", spec: poolMemoryChart(summaries) }] : []),
  ];
  const hasRatios = ratios.some((r) => r.figures.length > 0);
  if (hasRatios) charts.push({ file: "coldstart-ratios.svg", alt: "ratios with 95% intervals", spec: ratioChart("Cold-start ratios (median over median) with 95% intervals", ratioPoints(ratios)) });
  const paperNames = fns.filter((fn) => paperFunction(fn)).length;
  const markdown = [
    "## Cold starts",
    "",
    (report.auto
      ? `Under ${report.accel}, from ${report.startedAt}, one start of every mode per round, ${describeAuto(report.auto)}. Each cold start has the snapshot's (or, for boot, the image's and kernel's) files evicted from the page cache first. `
      : `${report.reps} per mode and function under ${report.accel}, from ${report.startedAt}; each cold start has the snapshot's (or, for boot, the image's and kernel's) files evicted from the page cache first. `) +
      "Latency is time to first response: QEMU spawn until the reply (warm: the call alone, on a running instance after one warm-up call). The floor installs every page (zero pages as the zero page) before the vCPUs run and leaves that out: what a restore costs when memory costs nothing.",
    "",
    "### vhive beside the paper (median ms)",
    "",
    beside,
    "",
    paperNames > 0
      ? "The paper's vanilla is Firecracker's lazy mapping with one 4 KiB read per fault, which vhive's `vanilla-4k` reproduces; its REAP is vhive's `prefetch`. Its host ran Firecracker under KVM on a SATA SSD. " +
        `The paper's record phase is ${Math.round(PAPER_FACTS.recordOverhead * 100)}% slower than a vanilla cold start on average, and REAP ${PAPER_FACTS.averageSpeedup}x faster than vanilla on average.`
      : "None of these functions is in the paper's table.",
    "",
    "![cold-start latency by mode](coldstart-latency.svg)",
    "",
    ...(hasRatios
      ? [
          "### Ratios with 95% confidence intervals",
          "",
          "Each ratio is one mode's median time to first response over another's. Its interval is a bootstrap over the interleaved rounds (a round: one start of every mode; rounds are resampled whole, so both medians always come from the same rounds), 2000 resamples from a fixed seed, percentile method; none with fewer than 2 rounds.",
          "",
          ratioTable("function", ratios),
          "",
          "![ratios with 95% intervals](coldstart-ratios.svg)",
          "",
        ]
      : []),
    ...pooledVmmsSection(report, summaries, ratios),
    ...spreadSection(report.rows),
    "### Every mode (medians)",
    "",
    perMode,
    "",
    "### Breakdown (median ms per phase)",
    "",
    breakdown,
    "",
    ...(disk.markdown ? [disk.markdown, ""] : []),
    ...charts.filter((c) => c.file !== "coldstart-latency.svg" && c.file !== "coldstart-ratios.svg").flatMap((c) => [`![${c.alt}](${c.file})`, ""]),
  ].join("\n");
  return { markdown, charts };
}

const fmtShare = (share: number | null) => (share === null || !Number.isFinite(share) ? "" : `${share.toFixed(2)}x`);

/** The working sets the prefetch modes read, on disk: per function and mode, and a chart per encoding. */
function wsDiskSection(rows: readonly BenchRow[], summaries: readonly ModeSummary[]): Section {
  const figures = wsDiskFigures(rows).filter((f) => f.concurrency === 1);
  if (figures.length === 0) return { markdown: "", charts: [] };
  const table = markdownTable(
    ["function", "mode", "encoding, read", "pages", "pages' bytes (format 2 on disk) MiB", "on disk MiB", "on disk / format 2", "read by the pager MiB", "fetch WS ms", "install WS ms", "median ms"],
    figures.map((f) => {
      const s = findSummary(summaries, f.function, f.mode);
      return [
        f.function,
        f.mode,
        [f.codec, f.read].filter(Boolean).join(", "),
        String(f.pages),
        fmtMib(f.pageBytes),
        fmtMib(f.diskBytes),
        fmtShare(f.ofPageBytes),
        fmtMib(f.roundReadBytes),
        fmtMs(s?.fetchWsMs),
        fmtMs(s?.installWsMs),
        fmtMs(s?.totalMs.median),
      ];
    }),
  );
  const bars = new Map<string, WsDiskBar>();
  for (const f of figures) {
    bars.set(`${f.function}\0format 2`, { function: f.function, encoding: "format 2 (every page raw)", bytes: f.pageBytes });
    bars.set(`${f.function}\0${f.codec}`, { function: f.function, encoding: `format 3, ${f.codec}`, bytes: f.diskBytes });
  }
  const markdown = [
    "### Working sets on disk",
    "",
    "What each prefetch mode read: the working set of format 3 (zero pages named in the index but not stored, the rest in first-touch order in blocks of 64 pages, raw or compressed), against the bytes of its pages, which format 2 stored whole. Read by the pager is its /proc/<pid>/io read_bytes (page-cache hits excluded), the lazy faults included.",
    "",
    table,
  ].join("\n");
  return { markdown, charts: [{ file: "ws-disk.svg", alt: "working set on disk per encoding", spec: wsDiskChart([...bars.values()]) }] };
}

/** The target a pooled start is judged by (issue 14). */
export const POOL_TARGET = { belowFloorShareOfLoadVmm: 0.8, ofPrefetch: 0.85 } as const;

const fmtCorrelation = (r: number) => (Number.isFinite(r) ? r.toFixed(2) : "");

/**
 * Where a mode's spread comes from: a start that took longer either had QEMU's threads running
 * longer (the guest's own work, translated anew after every restore) or waiting for a core
 * (the host's other work). Rows of older runs lack the CPU figures: no section then.
 */
function spreadSection(rows: readonly BenchRow[]): string[] {
  const timed = rows.filter((row) => row.concurrency === 1 && typeof row.qemuCpuMs === "number" && typeof row.qemuWaitMs === "number");
  if (timed.length === 0) return [];
  const range = (values: readonly number[]) => `${fmtMs(Math.min(...values))} .. ${fmtMs(Math.max(...values))}`;
  const table = groupRows(timed).map((group) => {
    const totals = group.map((row) => row.totalMs);
    const cpu = group.map((row) => row.qemuCpuMs!);
    const wait = group.map((row) => row.qemuWaitMs!);
    return [group[0]!.function, group[0]!.mode, String(group.length), range(totals), fmtMs(median(cpu)), range(cpu), fmtMs(median(wait)), range(wait), fmtCorrelation(correlation(totals, cpu)), fmtCorrelation(correlation(totals, wait))];
  });
  return [
    "### Where the spread comes from",
    "",
    "Per start, QEMU's threads from its start to the reply (pool modes: from taking the VMM), summed from `/proc/<pid>/task/*/schedstat`: time on a core, and time runnable but waiting for one. If slow starts are slow because QEMU ran longer, the spread is the guest's own work (under TCG, translated anew after every restore); if because it waited, it is the host's other work. r: the correlation over the starts of that function and mode.",
    "",
    markdownTable(["function", "mode", "starts", "total ms (min .. max)", "on a core, median ms", "(min .. max)", "waiting, median ms", "(min .. max)", "r(total, on a core)", "r(total, waiting)"], table),
    "",
  ];
}

/**
 * Pooled VMMs beside prefetch and the floor: how far below the floor (which still spawns QEMU)
 * a pooled start's first response is, against the floor's median loadVmmMs (the start-up a pool
 * skips), its ratios, and what a pooled VMM held while it waited.
 */
function pooledVmmsSection(report: ColdStartBenchReport, summaries: readonly ModeSummary[], ratios: readonly { group: string; figures: readonly RatioFigure[] }[]): string[] {
  const poolModes = report.modes.filter(isPoolMode);
  if (poolModes.length === 0) return [];
  const figure = (fn: string, numerator: BenchMode, denominator: BenchMode) => ratios.find((r) => r.group === fn)?.figures.find((f) => f.numerator === numerator && f.denominator === denominator);
  const rows = report.functions.flatMap(({ function: fn }) =>
    poolModes.flatMap((mode) => {
      const pooled = findSummary(summaries, fn, mode);
      if (!pooled) return [];
      const floor = findSummary(summaries, fn, "floor");
      const prefetch = findSummary(summaries, fn, "prefetch");
      const loadVmmMs = floor?.breakdown.loadVmmMs ?? prefetch?.breakdown.loadVmmMs;
      const belowFloorMs = floor ? floor.totalMs.median - pooled.totalMs.median : undefined;
      const ofPrefetch = figure(fn, mode, "prefetch");
      const met =
        belowFloorMs === undefined || loadVmmMs === undefined || !ofPrefetch
          ? "needs floor and prefetch"
          : belowFloorMs >= POOL_TARGET.belowFloorShareOfLoadVmm * loadVmmMs && ofPrefetch.estimate <= POOL_TARGET.ofPrefetch
            ? "met"
            : "not met";
      const onFloor = figure(fn, mode, "floor");
      return [
        [
          fn,
          mode,
          fmtMs(pooled.totalMs.median),
          belowFloorMs === undefined ? "" : fmtMs(belowFloorMs),
          loadVmmMs === undefined ? "" : fmtMs(loadVmmMs),
          belowFloorMs === undefined || !loadVmmMs ? "" : fmtPct(belowFloorMs / loadVmmMs),
          ofPrefetch ? formatRatioWithInterval(ofPrefetch) : "",
          onFloor ? formatRatioWithInterval(onFloor) : "",
          met,
          fmtMib(pooled.poolIdlePssBytes),
          fmtMib(pooled.poolIdlePrivateBytes),
        ],
      ];
    }),
  );
  return [
    "### Pooled VMMs",
    "",
    "A pooled start takes a QEMU pre-started for the snapshot, waiting in `-incoming defer` with its pager attached, so its time to first response (from taking it to the reply) has no VMM start-up: `pool` prefetches the working set at the cold start, `pool-installed` had it installed while it waited. " +
      `The target: below the floor (which still spawns QEMU) by at least ${POOL_TARGET.belowFloorShareOfLoadVmm * 100}% of the floor's median loadVmmMs, and at most ${POOL_TARGET.ofPrefetch}x of prefetch. ` +
      "Idle memory is what the pooled VMM held while it waited (QEMU and its pager, from /proc/<pid>/smaps_rollup, measured before the page cache was evicted), median per start.",
    "",
    markdownTable(
      ["function", "mode", "median ms", "floor − pool ms", "floor's loadVmmMs", "share of loadVmmMs", "pool / prefetch (95%)", "pool / floor (95%)", "target", "idle PSS MiB", "idle private MiB"],
      rows,
    ),
    "",
  ];
}

export function concurrencySection(report: ConcurrencyBenchReport): Section {
  const summaries = summarizeRows(report.rows);
  const paper = report.function === "helloworld";
  const pairs = ratioPairs(report.modes);
  const ratios = report.levels.map((level) => ({ group: String(level), figures: benchRatios(report.rows, report.function, level, pairs) }));
  const header = ["cold starts at once", ...report.modes.flatMap((mode) => [`${mode} median ms`, `${mode} min .. max`])];
  if (paper) header.push("paper vanilla", "paper REAP");
  header.push(...pairs.map((pair) => `${pair.numerator} / ${pair.denominator} (95% interval)`));
  const rows = report.levels.map((level, i) => {
    const cells = [String(level)];
    for (const mode of report.modes) {
      const s = findSummary(summaries, report.function, mode, level);
      cells.push(fmtMs(s?.totalMs.median), s ? `${fmtMs(s.totalMs.min)} .. ${fmtMs(s.totalMs.max)}` : "");
    }
    if (paper) {
      const p = PAPER_CONCURRENCY.find((entry) => entry.level === level);
      cells.push(p ? String(p.vanillaMs) : "", p ? String(p.reapMs) : "");
    }
    cells.push(...ratios[i]!.figures.map(formatRatioWithInterval));
    return cells;
  });
  const reads = wsDiskFigures(report.rows);
  const readsTable =
    reads.length === 0
      ? ""
      : markdownTable(
          ["cold starts at once", "mode", "encoding, read", "working set on disk MiB", "read by all pagers of a round MiB", "= working sets", "median ms"],
          reads.map((f) => [String(f.concurrency), f.mode, [f.codec, f.read].filter(Boolean).join(", "), fmtMib(f.diskBytes), fmtMib(f.roundReadBytes), fmtShare(f.readsOfWs), fmtMs(findSummary(summaries, report.function, f.mode, f.concurrency)?.totalMs.median)]),
        );
  const charts: Chart[] = [{ file: "concurrency.svg", alt: "concurrent cold starts", spec: concurrencyChart(report.function, summaries) }];
  if (pairs.length > 0) charts.push({ file: "concurrency-ratios.svg", alt: "concurrent ratios with 95% intervals", spec: ratioChart(`Concurrent cold starts of ${report.function}: ratios with 95% intervals, by starts at once`, ratioPoints(ratios)) });
  const markdown = [
    "## Concurrent cold starts",
    "",
    (report.auto
      ? `${report.function} under ${report.accel}, one round of each mode at a time per level, ${describeAuto(report.auto)}. The page cache is evicted once before each round (the starts of a round share it); the figure is each start's time to first response.`
      : `${report.function} under ${report.accel}, ${report.reps} rounds per level and mode, page cache evicted once before each round (the starts of a round share it); the figure is each start's time to first response.`) +
      (paper ? " The paper's columns are its helloworld curve (Firecracker under KVM, SATA SSD)." : " The paper measured this curve for helloworld only.") +
      (pairs.length > 0 ? " Ratios are of medians, with 95% intervals by bootstrap over the rounds of the level." : ""),
    "",
    markdownTable(header, rows),
    "",
    "![concurrent cold starts](concurrency.svg)",
    "",
    ...(pairs.length > 0 ? [ratioTable("at once", ratios), "", "![concurrent ratios with 95% intervals](concurrency-ratios.svg)", ""] : []),
    ...(readsTable
      ? [
          "### Working-set reads at once",
          "",
          "What all the pagers of one round read from disk together (their /proc/<pid>/io read_bytes summed: page-cache hits excluded; median over the rounds), in working sets: with O_DIRECT (`direct`) each pager reads its own copy, through the page cache (`cached`) the first reads fill it and the others find their pages there.",
          "",
          readsTable,
          "",
        ]
      : []),
  ].join("\n");
  return { markdown, charts };
}

export function reuseSection(report: ReuseReport): Section {
  const rows = report.functions.map((f) => [
    f.function,
    `${JSON.stringify(f.inputs.a)} / ${JSON.stringify(f.inputs.b)}`,
    `${f.aVsB.aPages} (${fmtMib(f.aVsB.aPages * f.pageSizeBytes)} MiB)`,
    `${f.aVsB.bPages} (${fmtMib(f.aVsB.bPages * f.pageSizeBytes)} MiB)`,
    String(f.aVsB.commonPages),
    fmtPct(f.aVsB.shareOfA),
    fmtPct(f.aVsB.shareOfB),
    fmtPct(f.aVsA2.shareOfA),
    fmtMib(f.touchedPages * f.pageSizeBytes),
    fmtPct(f.wsShareOfTouched),
  ]);
  const markdown = [
    "## Working-set reuse across inputs",
    "",
    `Under ${report.accel}: each function's working set recorded with input A, with input B, and with A again (what two recordings of the same input differ by). ` +
      `The paper found over ${Math.round(PAPER_FACTS.reuseShareMost * 100)}% of the pages in common for 7 of 10 functions and at least ${Math.round(PAPER_FACTS.reuseShareAll * 100)}% for all, ` +
      `and working sets of ${Math.round(PAPER_FACTS.wsShareMin * 100)}-${Math.round(PAPER_FACTS.wsShareMax * 100)}% (${Math.round(PAPER_FACTS.wsShareAverage * 100)}% on average) of the booted footprint. ` +
      "Touched memory here is the non-zero pages of the snapshot's memory file.",
    "",
    markdownTable(["function", "inputs A / B", "WS A pages", "WS B pages", "in common", "of A", "of B", "A vs A again", "touched MiB", "WS A / touched"], rows),
    "",
    ...(report.skipped.length > 0 ? ["Skipped: " + report.skipped.map((s) => `${s.function} (${s.reason})`).join("; "), ""] : []),
    "![working-set reuse](reuse.svg)",
    "",
  ].join("\n");
  return { markdown, charts: [{ file: "reuse.svg", alt: "working-set reuse", spec: reuseChart(report.functions) }] };
}

/** How a load run was shaped, in words: "poisson arrivals at 5 req/s for 60 s (seed 7)". */
export function describeLoadShape(report: LoadReport): string {
  const forS = `for ${report.durationMs / 1000} s`;
  return report.arrival === "closed" ? `${report.clients} clients back to back (closed loop) ${forS}` : `${report.arrival} arrivals at ${report.rps} req/s ${forS}${report.seed === null ? "" : ` (seed ${report.seed})`}`;
}

export function loadSection(report: LoadReport): Section {
  const summary = summarizeLoad(report);
  const d = report.deployment;
  const errors = describeErrors(summary.errors);
  const latency = markdownTable(
    ["start", "requests", "share", "p50 ms", "p90 ms", "p99 ms", "max ms", "median start ms", "median queue ms"],
    summary.latency.map((f) => [f.start, String(f.requests), fmtPct(f.requests / Math.max(1, summary.ok)), fmtMs(f.p50), fmtMs(f.p90), fmtMs(f.p99), fmtMs(f.max), fmtMs(f.startMs), fmtMs(f.queueMs)]),
  );
  const where = d
    ? `${report.function} on the daemon at ${report.url}${report.accel ? ` (${report.accel})` : ""}, from ${report.startedAt}: ${describeLoadShape(report)}. ` +
      `Deployed from ${d.imageRef} with start policy ${d.start}, keep-alive ${d.keepaliveMs / 1000} s, ${d.minInstances}..${d.maxInstances} instances serving ${d.concurrency} request${d.concurrency === 1 ? "" : "s"} each, ${d.memMib} MiB. ` +
      "Latency is the client's: request sent until reply received. The start is how the daemon found the request an instance (warm: an idle one; otherwise the kind of cold start it waited for)."
    : `${report.function} at ${report.url}${report.method ? ` (gRPC ${report.method})` : ""}, from ${report.startedAt}: ${describeLoadShape(report)}. ` +
      "Latency is the client's: request sent until reply received, through one client kept for the run (gRPC: one HTTP/2 connection; HTTP: kept-alive connections). " +
      "Start kinds are unknown: a function behind an address, not on a vhive daemon, does not say how it got an instance (on a vhive node the container's vhive-start.json does).";
  const markdown = [
    "## Load",
    "",
    where,
    "",
    markdownTable(
      ["sent", "ok", "errors", "offered req/s", "achieved req/s", "max send lag ms"],
      [[String(summary.sent), String(summary.ok), errors.length > 0 ? errors.join(", ") : "0", summary.offeredRps === null ? "closed loop" : String(summary.offeredRps), summary.achievedRps.toFixed(1), fmtMs(summary.maxLagMs)]],
    ),
    "",
    latency,
    "",
    "![latency under load](load-latency.svg)",
    "",
  ].join("\n");
  return { markdown, charts: [{ file: "load-latency.svg", alt: "latency under load", spec: loadChart(report.function, report.rows) }] };
}

export function densitySection(report: DensityReport): Section {
  const summaries = summarizeDensity(report);
  const mib = (bytes: number | null) => (bytes === null ? "" : fmtMib(bytes));
  const table = markdownTable(
    [
      "mode",
      "instances",
      "start all, s",
      "median start ms",
      "PSS per instance MiB",
      "private per instance MiB",
      "guest RAM: private copies MiB",
      "guest RAM: shared page cache (PSS) MiB",
      "QEMU outside guest RAM MiB",
      "pager MiB",
      "PSS of all MiB",
      "MemAvailable before → after MiB",
      "host memory per instance MiB",
    ],
    summaries.map((s) => [
      s.mode,
      String(s.instances),
      (s.startAllMs / 1000).toFixed(1),
      fmtMs(s.startMs.median),
      mib(s.pssBytes),
      mib(s.privateBytes),
      mib(s.guestAnonBytes),
      mib(s.guestPageCachePssBytes),
      mib(s.otherPssBytes),
      mib(s.pagerPssBytes),
      mib(s.totalPssBytes),
      `${fmtMib(s.memAvailableBeforeBytes)} → ${fmtMib(s.memAvailableAfterBytes)}`,
      fmtMib(s.memDropPerInstanceBytes),
    ]),
  );
  const markdown = [
    "## Density: idle instances",
    "",
    `${report.instances} instances of ${report.function} (${report.memMib} MiB of guest memory each) per mode under ${report.accel}, from ${report.startedAt}, started one after another and kept running; once all were up each answered once (${JSON.stringify(report.input)}), then each was measured and all were stopped before the next mode. ` +
      "Memory is QEMU's and its pager's, from /proc/<pid>/smaps_rollup (medians per instance); guest RAM is QEMU's mapping of the guest's memory, from /proc/<pid>/smaps. " +
      "PSS divides a page among the processes that map it: `vanilla` (and `vanilla-4k`) map the snapshot's memory file privately, so a page the guest only reads stays one page-cache page shared by every instance, 1/N of it in each one's PSS, while `lazy`, `prefetch`, `floor` and `boot` hold a private anonymous copy of every page. " +
      "Host memory per instance is MemAvailable's drop over the run divided by N (page cache counts as available, so vanilla's shared pages barely show there). Start all is the sum of the N starts, one after another (the floor's includes installing every page).",
    "",
    table,
    "",
    "![memory per idle instance](density.svg)",
    "",
  ].join("\n");
  return { markdown, charts: [{ file: "density.svg", alt: "memory per idle instance", spec: densityChart(report.function, report.instances, summaries) }] };
}

/** One row per function for reuse.csv. */
export function reuseCsv(report: ReuseReport): string {
  return toCsv(
    ["function", "inputA", "inputB", "pageSizeBytes", "wsPagesA", "wsPagesB", "wsPagesA2", "commonAB", "shareOfA", "shareOfB", "shareAA2", "touchedPages", "memPages", "wsShareOfTouched"],
    report.functions.map((f) => [
      f.function,
      f.inputs.a,
      f.inputs.b,
      f.pageSizeBytes,
      f.aVsB.aPages,
      f.aVsB.bPages,
      f.aVsA2.bPages,
      f.aVsB.commonPages,
      f.aVsB.shareOfA,
      f.aVsB.shareOfB,
      f.aVsA2.shareOfA,
      f.touchedPages,
      f.memPages,
      f.wsShareOfTouched,
    ]),
  );
}

// ---- the report -------------------------------------------------------------------------------

export interface BuiltReport {
  markdown: string;
  /** SVG files by name. */
  svgs: Map<string, string>;
}

export async function buildReport(bundle: ResultsBundle, machine = describeMachine()): Promise<BuiltReport> {
  const sections: Section[] = [];
  if (bundle.coldstart) sections.push(coldStartSection(bundle.coldstart, bundle.reuse));
  if (bundle.reuse) sections.push(reuseSection(bundle.reuse));
  if (bundle.concurrency) sections.push(concurrencySection(bundle.concurrency));
  if (bundle.load) sections.push(loadSection(bundle.load));
  if (bundle.trace?.length) sections.push(traceSection(bundle.trace));
  if (bundle.density) sections.push(densitySection(bundle.density));
  const svgs = new Map<string, string>();
  for (const section of sections) for (const chart of section.charts) svgs.set(chart.file, await renderSvg(chart.spec));
  const markdown = [
    "# vhive results",
    "",
    `Machine: ${machine}. Paper: Ustiugov et al., "Benchmarking, Analysis, and Optimization of Serverless Function Snapshots", ASPLOS 2021 (Xeon E5-2680 v3, SATA SSD at 850 MB/s, Firecracker under KVM).`,
    "",
    ...sections.map((section) => section.markdown),
  ].join("\n");
  return { markdown, svgs };
}

function describeMachine(): string {
  const cpu = cpus();
  return `${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, Linux ${release()}`;
}

/** Read every experiment's JSON in `outDir`. */
export async function loadBundle(outDir: string): Promise<ResultsBundle> {
  const bundle: ResultsBundle = {};
  for (const [experiment, base] of Object.entries(EXPERIMENT_FILES) as [Experiment, string][]) {
    const text = await readFile(join(outDir, `${base}.json`), "utf8").catch(() => undefined);
    if (text !== undefined) (bundle as Record<Experiment, unknown>)[experiment] = JSON.parse(text);
  }
  const traces = (await readdir(outDir).catch(() => [])).filter((file) => /^trace-.+\.json$/.test(file)).sort();
  if (traces.length > 0) bundle.trace = await Promise.all(traces.map(async (file) => JSON.parse(await readFile(join(outDir, file), "utf8")) as TraceReport));
  return bundle;
}

export interface WrittenResults {
  outDir: string;
  files: string[];
  report: string;
}

/** What one experiment run produced, as written to <out>/<experiment>.json. */
export type ExperimentReport = ColdStartBenchReport | ConcurrencyBenchReport | ReuseReport | LoadReport | TraceReport | DensityReport;

function csvOf(report: ExperimentReport): string {
  if (report.experiment === "reuse") return reuseCsv(report);
  if (report.experiment === "load") return loadRowsCsv(report.rows);
  if (report.experiment === "trace") return traceRowsCsv(report.rows);
  if (report.experiment === "density") return densityRowsCsv(report.rows);
  return benchRowsCsv(report.rows);
}

/** Write one experiment's JSON and CSV, then the report over everything in the directory. */
export async function writeResults(outDir: string, report: ExperimentReport): Promise<WrittenResults> {
  await mkdir(outDir, { recursive: true });
  const base = report.experiment === "trace" ? `trace-${report.label}` : EXPERIMENT_FILES[report.experiment];
  const files = [join(outDir, `${base}.json`), join(outDir, `${base}.csv`)];
  await writeFile(files[0]!, JSON.stringify(report, null, 2) + "\n");
  await writeFile(files[1]!, csvOf(report));
  const built = await buildReport(await loadBundle(outDir));
  const reportPath = join(outDir, REPORT_FILE);
  await writeFile(reportPath, built.markdown);
  files.push(reportPath);
  for (const [file, svg] of built.svgs) {
    await writeFile(join(outDir, file), svg);
    files.push(join(outDir, file));
  }
  return { outDir, files, report: reportPath };
}

/** The default output directory: <state>/results/<UTC time>-<experiment>. */
export function defaultOutDir(stateDir: string, experiment: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
  return join(stateDir, "results", `${stamp}-${experiment}`);
}

