import { benchConcurrency, CONCURRENT_MODES, defaultOutDir, findSummary, parseConcurrentModes, parseLevels, PAPER_CONCURRENCY, summarizeRows, writeResults, type ConcurrencyBenchReport, type WrittenResults } from "../../bench/index.js";
import { openHost } from "../../orchestrator/index.js";
import { resolveFunction, withProgressBar } from "../bench-output.js";
import { defineCommand } from "../command.js";
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
    `report: ${written.report}`,
  ].join("\n");
}

export const benchConcurrencyCommand = defineCommand({
  command: "concurrency",
  describe: "many cold starts of one function at once, per memory mode (the paper's concurrency curve)",
  builder: (yargs) =>
    yargs
      .option("function", { type: "string", default: "helloworld", describe: "suite function or image" })
      .option("levels", { type: "string", default: "1,2,4,8", describe: "comma-separated numbers of cold starts at once" })
      .option("modes", { type: "string", default: "vanilla,prefetch", describe: `comma-separated, of ${CONCURRENT_MODES.join(", ")}` })
      .option("reps", { type: "number", default: 2, describe: "rounds per level and mode" })
      .option("out", { type: "string", describe: "directory for the CSV, JSON, report.md and SVG chart (default: <state>/results/<time>-concurrency)" })
      .option("accel", { choices: ["auto", "kvm", "tcg"] as const, default: "auto" as const, describe: "accelerator" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object with every row" }),
  run: async (args, context) => {
    const levels = parseLevels(args.levels);
    const modes = parseConcurrentModes(args.modes);
    const image = await resolveFunction(args.function, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgressBar("concurrent cold starts", context, (onProgress) => benchConcurrency(host, image, { levels, modes, reps: args.reps, signal: context.signal, onProgress }));
    const written = await writeResults(args.out ?? defaultOutDir(context.stateDir, "concurrency"), report);
    if (args.json) context.printJson({ ...report, outDir: written.outDir, files: written.files });
    else context.print(describe(report, written));
  },
});
