import { benchColdStarts, BENCH_MODES, defaultOutDir, orderModes, paperLatencyMs, summarizeRows, writeResults, type ColdStartBenchReport, type WrittenResults } from "../../bench/index.js";
import { openHost } from "../../orchestrator/index.js";
import { resolveFunctions, withProgressBar } from "../bench-output.js";
import { defineCommand } from "../command.js";
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
    `report: ${written.report}`,
    `rows:   ${written.files.filter((file) => /\.(csv|json)$/.test(file)).join(", ")}`,
  ].join("\n");
}

export const benchColdstartCommand = defineCommand({
  command: "coldstart",
  describe: "cold starts of each function in each mode (warm, boot, snapshot memory modes), with a report beside the paper's figures",
  builder: (yargs) =>
    yargs
      .option("functions", { type: "string", default: "helloworld,json_serdes", describe: "comma-separated suite functions or images" })
      .option("modes", { type: "string", default: "warm,boot,vanilla,vanilla-4k,record,prefetch,floor", describe: `comma-separated, of ${BENCH_MODES.join(", ")}` })
      .option("reps", { type: "number", default: 3, describe: "starts per function and mode" })
      .option("out", { type: "string", describe: "directory for the CSV, JSON, report.md and SVG charts (default: <state>/results/<time>-coldstart)" })
      .option("accel", { choices: ["auto", "kvm", "tcg"] as const, default: "auto" as const, describe: "accelerator" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object with every row" }),
  run: async (args, context) => {
    const modes = orderModes(args.modes.split(",").filter(Boolean));
    const images = await resolveFunctions(args.functions, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgressBar("cold starts", context, (onProgress) => benchColdStarts(host, images, { modes, reps: args.reps, signal: context.signal, onProgress }));
    const written = await writeResults(args.out ?? defaultOutDir(context.stateDir, "coldstart"), report);
    if (args.json) context.printJson({ ...report, outDir: written.outDir, files: written.files });
    else context.print(describeColdStarts(report, written));
  },
});
