/** Pieces the `vhive bench` experiment commands share: function lists, progress, output dirs. */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Argv } from "yargs";
import {
  DEFAULT_TARGET_SHARE,
  MIN_AUTO_ROUNDS,
  defaultOutDir,
  describeWide,
  formatBounds,
  formatHalfWidth,
  formatRatio,
  parseReps,
  writeResults,
  type ExperimentReport,
  type ProgressListener,
  type RatioFigure,
  type RepsPlan,
  type RoundStatus,
  type WrittenResults,
} from "../bench/index.js";
import type { StoredImage } from "../image/index.js";
import { RECIPE_FILE } from "../image/recipe.js";
import { packagePath } from "../shared/package-root.js";
import type { CliContext } from "./context.js";
import { parseDurationMs } from "./duration.js";
import { table } from "./format.js";
import { imageFromRef } from "./function-options.js";
import { withProgress } from "./progress.js";
import { VhiveError } from "../shared/errors.js";

/** A suite function's name (functions/<name>, built if needed), or any image reference. */
export async function resolveFunction(name: string, context: CliContext): Promise<StoredImage> {
  const recipe = packagePath("functions", name);
  const isSuite = await stat(join(recipe, RECIPE_FILE)).then(() => true, () => false);
  return imageFromRef(isSuite ? recipe : name, context);
}

export async function resolveFunctions(list: string, context: CliContext): Promise<StoredImage[]> {
  const images: StoredImage[] = [];
  for (const name of list.split(",").filter(Boolean)) images.push(await resolveFunction(name, context));
  return images;
}

/** --out and --json, as every experiment that writes results takes them. */
export function resultsOptions<T>(yargs: Argv<T>, experiment: string, what = "the CSV, JSON, report.md and SVG charts") {
  return yargs
    .option("out", { type: "string", describe: `directory for ${what} (default: <state>/results/<time>-${experiment})` })
    .option("json", { type: "boolean", default: false, describe: "print one JSON object with every row and where the files went" });
}

/** Where the report and the rows went, for the end of a command's text. */
export function writtenLines(written: WrittenResults): string[] {
  return [`report: ${written.report}`, `rows:   ${written.files.filter((file) => /\.(csv|json)$/.test(file)).join(", ")}`];
}

/**
 * Write an experiment's results to --out (default <state>/results/<time>-<experiment>), then
 * print them: with --json the report and where it went, else the command's text.
 */
export async function writeAndPrint<R extends ExperimentReport>(
  report: R,
  args: { out?: string; json: boolean },
  experiment: string,
  context: CliContext,
  describe: (report: R, written: WrittenResults) => string,
  extraJson: Record<string, unknown> = {},
): Promise<void> {
  const written = await writeResults(args.out ?? defaultOutDir(context.stateDir, experiment), report);
  if (args.json) context.printJson({ ...report, ...extraJson, outDir: written.outDir, files: written.files });
  else context.print(describe(report, written));
}

/** `[#####.....] 5/10 what, ETA 1m05s`: a text progress bar for the spinner's line. */
export function progressLine(done: number, total: number, what: string, elapsedMs: number, width = 20): string {
  const share = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(share * width);
  const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
  let eta = "";
  if (done > 0 && done < total) {
    const leftS = Math.round(((elapsedMs / done) * (total - done)) / 1000);
    eta = `, ETA ${leftS >= 60 ? `${Math.floor(leftS / 60)}m${String(leftS % 60).padStart(2, "0")}s` : `${leftS}s`}`;
  }
  return `${bar} ${done}/${total} ${what}${eta}`;
}

/** Run an experiment under a spinner whose line is a progress bar. */
export function withProgressBar<T>(title: string, context: CliContext, run: (onProgress: ProgressListener) => Promise<T>): Promise<T> {
  const started = performance.now();
  return withProgress(title, context.log, (update) => run((done, total, what) => update(progressLine(done, total, what, performance.now() - started))));
}

/** --reps N|auto and what auto needs: how many interleaved rounds a bench runs. */
export function repsOptions<T>(yargs: Argv<T>, defaultReps: number, what: string) {
  return yargs
    .option("reps", {
      type: "string",
      default: String(defaultReps),
      describe: `${what}, or auto: rounds until every printed ratio's 95% interval is within ±${DEFAULT_TARGET_SHARE * 100}%, or --max-time`,
    })
    .option("min-reps", { type: "number", default: MIN_AUTO_ROUNDS, describe: `with --reps auto: rounds run in any case (at least ${MIN_AUTO_ROUNDS})` })
    .option("max-time", { type: "string", default: "20m", describe: "with --reps auto: the time cap for the whole bench, e.g. 20m or 1h" });
}

/** The rounds a bench runs, from --reps, --min-reps and --max-time. */
export function repsPlan(args: { reps: string; "min-reps": number; "max-time": string }): RepsPlan {
  const reps = parseReps(args.reps);
  if (reps !== "auto") return reps;
  const minRounds = args["min-reps"];
  if (!Number.isInteger(minRounds) || minRounds < MIN_AUTO_ROUNDS || minRounds > 10_000) {
    throw new VhiveError("ERR_VALIDATION", `--min-reps ${minRounds}: expected a whole number of at least ${MIN_AUTO_ROUNDS}`, {
      remedy: `below ${MIN_AUTO_ROUNDS} rounds a bootstrap interval of a median is too narrow to stop on (it covers the true ratio far less than 95% of the time)`,
    });
  }
  const maxTimeMs = parseDurationMs(args["max-time"], "max-time");
  if (!(maxTimeMs > 0)) throw new VhiveError("ERR_VALIDATION", `--max-time ${args["max-time"]}: expected a duration above 0`);
  return { minRounds, maxTimeMs, targetShare: DEFAULT_TARGET_SHARE };
}

/** After each round of --reps auto, a line on stderr (beside the progress bar): what is still too wide. */
export function printRoundStatus(status: RoundStatus, plan: RepsPlan): void {
  if (typeof plan === "number") return;
  const target = `±${Number((plan.targetShare * 100).toFixed(1))}%`;
  const wide = status.tooWide.map(describeWide).join(", ");
  let line: string;
  if (status.stoppedBy === "precise") line = `${status.series}: every ratio within ${target} after ${status.round} rounds`;
  else if (status.stoppedBy === "time cap") line = `${status.series}: time cap reached after ${status.round} rounds; still wider than ${target}: ${wide}`;
  else line = `${status.series} round ${status.round}${status.round < plan.minRounds ? ` (of at least ${plan.minRounds})` : ""}: still wider than ${target}: ${wide}`;
  process.stderr.write(line + "\n");
}

/** Ratios with their intervals as an aligned table, one line per group and ratio. */
export function ratioLines(groupTitle: string, groups: readonly { group: string; figures: readonly RatioFigure[] }[]): string[] {
  const rows = groups.flatMap(({ group, figures }) => figures.map((f) => [group, f.label, formatRatio(f.estimate), formatBounds(f), formatHalfWidth(f), String(f.rounds)]));
  if (rows.length === 0) return [];
  return ["ratios: median over median, 95% interval by bootstrap over the interleaved rounds", table([[groupTitle, "ratio", "figure", "95% interval", "±", "rounds"], ...rows])];
}
