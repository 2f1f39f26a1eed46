import { benchColdStarts, BENCH_MODES, orderModes, paperLatencyMs, summarizeRows, type ColdStartBenchReport, type WrittenResults } from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { resolveFunctions, resultsOptions, withProgressBar, writeAndPrint, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { accelOption, invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { formatBytes, formatMs, table } from "../format.js";

/** The table `vhive bench coldstart` and `vhive demo` print: one line per function and mode. */
export function describeColdStarts(report: ColdStartBenchReport, written: WrittenResults): string {
  const rows = summarizeRows(report.rows).map((s) => {
    const paper = paperLatencyMs(s.function, s.mode);
    return [
      s.function,
      s.mode,
      formatMs(s.totalMs.median),
      `${formatMs(s.totalMs.min)} .. ${formatMs(s.totalMs.max)}`,
      s.faults === null ? "" : String(s.faults),
      s.bytesRead === null ? "" : formatBytes(s.bytesRead),
      s.wsBytes ? formatBytes(s.wsBytes) : "",
      paper === undefined ? "" : `${paper} ms`,
    ];
  });
  return [
    `cold starts under ${report.accel}, ${report.reps} per mode, page cache evicted before each; time from QEMU spawn to the reply (warm: the call alone)`,
    "",
    table([["function", "mode", "median", "min .. max", "faults", "read", "working set", "paper (KVM)"], ...rows]),
    "",
    ...writtenLines(written),
  ].join("\n");
}

export const benchColdstartCommand = defineCommand({
  command: "coldstart",
  describe: "cold starts of each function in each mode (warm, boot, snapshot memory modes), with a report beside the paper's figures",
  builder: (yargs) =>
    resultsOptions(timeoutOption(accelOption(yargs)), "coldstart")
      .option("functions", { type: "string", default: "helloworld,json_serdes", describe: "comma-separated suite functions or images" })
      .option("modes", { type: "string", default: "warm,boot,vanilla,vanilla-4k,record,prefetch,floor", describe: `comma-separated, of ${BENCH_MODES.join(", ")}` })
      .option("reps", { type: "number", default: 3, describe: "starts per function and mode" }),
  run: async (args, context) => {
    const modes = orderModes(args.modes.split(",").filter(Boolean));
    const images = await resolveFunctions(args.functions, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgressBar("cold starts", context, (onProgress) => benchColdStarts(host, images, { modes, reps: args.reps, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onProgress }));
    await writeAndPrint(report, args, "coldstart", context, describeColdStarts);
  },
});
