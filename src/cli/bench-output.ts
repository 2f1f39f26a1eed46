/** Pieces the `vhive bench` experiment commands share: function lists, progress, output dirs. */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { Argv } from "yargs";
import { defaultOutDir, writeResults, type ExperimentReport, type ProgressListener, type WrittenResults } from "../bench/index.js";
import type { StoredImage } from "../image/index.js";
import { RECIPE_FILE } from "../image/recipe.js";
import { packagePath } from "../shared/package-root.js";
import type { CliContext } from "./context.js";
import { imageFromRef } from "./function-options.js";
import { withProgress } from "./progress.js";

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
