import {
  assertSomethingToNarrow,
  benchConcurrency,
  benchRatios,
  CONCURRENT_MODES,
  describeAuto,
  findSummary,
  formatRatioWithInterval,
  parseConcurrentModes,
  parseLevels,
  PAPER_CONCURRENCY,
  ratioPairs,
  summarizeRows,
  type ConcurrencyBenchReport,
  type WrittenResults,
  wsDiskFigures,
} from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { printRoundStatus, repsOptions, repsPlan, resolveFunction, resultsOptions, withProgressBar, writeAndPrint, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { accelOption, invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { formatBytes, formatMs, table } from "../format.js";

/** Each level's ratios with their intervals. */
function concurrencyRatios(report: ConcurrencyBenchReport) {
  const pairs = ratioPairs(report.modes);
  return report.levels.map((level) => ({ level, figures: benchRatios(report.rows, report.function, level, pairs) }));
}

function describe(report: ConcurrencyBenchReport, written: WrittenResults): string {
  const summaries = summarizeRows(report.rows);
  const paper = report.function === "helloworld";
  const ratios = concurrencyRatios(report);
  const rows = report.levels.map((level, i) => {
    const cells = [String(level), ...report.modes.map((mode) => formatMs(findSummary(summaries, report.function, mode, level)?.totalMs.median ?? Number.NaN))];
    const p = PAPER_CONCURRENCY.find((entry) => entry.level === level);
    if (paper) cells.push(p ? `${p.vanillaMs} / ${p.reapMs} ms` : "");
    cells.push(...ratios[i]!.figures.map(formatRatioWithInterval));
    return cells;
  });
  const ratioTitles = ratios[0]?.figures.map((f) => `${f.label} (95% interval)`) ?? [];
  const reads = wsDiskFigures(report.rows).map((f) => [
    String(f.concurrency),
    f.mode,
    `${f.codec}, ${f.read}`,
    formatBytes(f.diskBytes),
    f.roundReadBytes === null ? "" : formatBytes(f.roundReadBytes),
    f.readsOfWs === null ? "" : `${f.readsOfWs.toFixed(2)}x`,
  ]);
  return [
    `${report.function}: concurrent cold starts under ${report.accel}, ${report.reps} rounds each; median time to first response per start`,
    ...(report.auto ? [describeAuto(report.auto)] : []),
    "",
    table([["at once", ...report.modes, ...(paper ? ["paper vanilla / REAP"] : []), ...ratioTitles], ...rows]),
    "",
    ...(reads.length > 0
      ? ["working set read from disk by all the pagers of a round (median over rounds):", table([["at once", "mode", "encoding, read", "on disk", "read in all", "working sets"], ...reads]), ""]
      : []),
    ...writtenLines(written),
  ].join("\n");
}

export const benchConcurrencyCommand = defineCommand({
  command: "concurrency",
  describe: "many cold starts of one function at once, per memory mode (the paper's concurrency curve)",
  builder: (yargs) =>
    repsOptions(resultsOptions(timeoutOption(accelOption(yargs)), "concurrency"), 2, "rounds per level (a batch of every mode each)")
      .option("function", { type: "string", default: "helloworld", describe: "suite function or image" })
      .option("levels", { type: "string", default: "1,2,4,8", describe: "comma-separated numbers of cold starts at once" })
      .option("modes", { type: "string", default: "vanilla,prefetch", describe: `comma-separated, of ${CONCURRENT_MODES.join(", ")}` }),
  run: async (args, context) => {
    const levels = parseLevels(args.levels);
    const modes = parseConcurrentModes(args.modes);
    const reps = repsPlan(args);
    assertSomethingToNarrow(reps, modes);
    const image = await resolveFunction(args.function, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgressBar("concurrent cold starts", context, (onProgress) =>
      benchConcurrency(host, image, { levels, modes, reps, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onProgress, onRound: (status) => printRoundStatus(status, reps) }),
    );
    await writeAndPrint(report, args, "concurrency", context, describe, { ratios: concurrencyRatios(report) });
  },
});
