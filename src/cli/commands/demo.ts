import { benchColdStarts, findSummary, paperFunction, summarizeRows, type BenchMode, type ColdStartBenchReport } from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { resolveFunctions, resultsOptions, withProgressBar, writeAndPrint } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { describeColdStarts } from "./bench-coldstart.js";

/** helloworld, and json_serdes: it parses megabytes of JSON, so its working set is not trivial. */
export const DEMO_FUNCTIONS = "helloworld,json_serdes";
/**
 * Both baselines: vanilla-4k (one 4 KiB read per fault) is the paper's, so REAP's speedup over it
 * is the one to set beside the paper's; vanilla (QEMU's default, 2 MiB reads) is what a plain
 * QEMU restore does on this host, and is close to prefetch on a fast disk.
 */
export const DEMO_MODES: BenchMode[] = ["warm", "boot", "vanilla", "vanilla-4k", "record", "prefetch"];

/** Per function: prefetch's speedup over each baseline, the paper's beside the first. */
export function describeSpeedups(report: ColdStartBenchReport): string[] {
  const summaries = summarizeRows(report.rows);
  return report.functions.flatMap(({ function: fn }) => {
    const median = (mode: BenchMode) => findSummary(summaries, fn, mode)?.totalMs.median;
    const prefetch = median("prefetch");
    const paper4k = median("vanilla-4k");
    const plain = median("vanilla");
    if (prefetch === undefined || paper4k === undefined || plain === undefined) return [];
    const paper = paperFunction(fn);
    return [
      `${fn}: prefetch (REAP) is ${(paper4k / prefetch).toFixed(2)}x faster than vanilla-4k, the paper's baseline${paper ? ` (the paper: ${paper.speedup}x under KVM)` : ""}, ` +
        `and ${(plain / prefetch).toFixed(2)}x faster than vanilla, QEMU's default (2 MiB per fault)`,
    ];
  });
}

export const demoCommand = defineCommand({
  command: "demo",
  describe: "the whole path once: prepare the host, build two functions, and compare warm, boot and snapshot cold starts (vanilla, vanilla-4k, REAP record and prefetch) in a small report",
  builder: (yargs) =>
    resultsOptions(timeoutOption(yargs), "demo", "the report")
      .option("reps", { type: "number", default: 1, describe: "starts per function and mode (1-2 keeps it to a few minutes)" })
      .option("functions", { type: "string", default: DEMO_FUNCTIONS, describe: "comma-separated suite functions" }),
  run: async (args, context) => {
    const host = await openHost({ stateDir: context.stateDir, accel: "auto", log: context.log });
    if (!args.json) context.print(`host: QEMU ${host.qemu.version}, guest kernel ${host.guest.kernel.version}, accelerator ${host.accel} (${host.accelProbe.reason})`);
    const images = await resolveFunctions(args.functions, context);
    const report = await withProgressBar("cold starts", context, (onProgress) =>
      benchColdStarts(host, images, { modes: DEMO_MODES, reps: args.reps, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onProgress }),
    );
    await writeAndPrint(report, args, "demo", context, (done, written) =>
      ["", describeColdStarts(done, written), "", ...describeSpeedups(done), "", "more: `vhive bench coldstart --help`, `vhive bench reuse`, `vhive bench concurrency`, `vhive bench load`"].join("\n"),
    );
  },
});
