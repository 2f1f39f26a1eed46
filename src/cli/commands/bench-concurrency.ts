import { benchConcurrency, CONCURRENT_MODES, findSummary, parseConcurrentModes, parseLevels, PAPER_CONCURRENCY, summarizeRows, type ConcurrencyBenchReport, type WrittenResults } from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { resolveFunction, resultsOptions, withProgressBar, writeAndPrint, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { accelOption, invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { formatMs, table } from "../format.js";

function describe(report: ConcurrencyBenchReport, written: WrittenResults): string {
  const summaries = summarizeRows(report.rows);
  const paper = report.function === "helloworld";
  const rows = report.levels.map((level) => {
    const cells = [String(level), ...report.modes.map((mode) => formatMs(findSummary(summaries, report.function, mode, level)?.totalMs.median ?? Number.NaN))];
    const p = PAPER_CONCURRENCY.find((entry) => entry.level === level);
    if (paper) cells.push(p ? `${p.vanillaMs} / ${p.reapMs} ms` : "");
    return cells;
  });
  return [
    `${report.function}: concurrent cold starts under ${report.accel}, ${report.reps} rounds each; median time to first response per start`,
    "",
    table([["at once", ...report.modes, ...(paper ? ["paper vanilla / REAP"] : [])], ...rows]),
    "",
    ...writtenLines(written),
  ].join("\n");
}

export const benchConcurrencyCommand = defineCommand({
  command: "concurrency",
  describe: "many cold starts of one function at once, per memory mode (the paper's concurrency curve)",
  builder: (yargs) =>
    resultsOptions(timeoutOption(accelOption(yargs)), "concurrency")
      .option("function", { type: "string", default: "helloworld", describe: "suite function or image" })
      .option("levels", { type: "string", default: "1,2,4,8", describe: "comma-separated numbers of cold starts at once" })
      .option("modes", { type: "string", default: "vanilla,prefetch", describe: `comma-separated, of ${CONCURRENT_MODES.join(", ")}` })
      .option("reps", { type: "number", default: 2, describe: "rounds per level and mode" }),
  run: async (args, context) => {
    const levels = parseLevels(args.levels);
    const modes = parseConcurrentModes(args.modes);
    const image = await resolveFunction(args.function, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgressBar("concurrent cold starts", context, (onProgress) => benchConcurrency(host, image, { levels, modes, reps: args.reps, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onProgress }));
    await writeAndPrint(report, args, "concurrency", context, describe);
  },
});
