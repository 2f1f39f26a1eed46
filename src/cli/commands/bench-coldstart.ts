import { assertSomethingToNarrow, benchColdStarts, checksCost, benchRatios, BENCH_MODES, describeAuto, orderModes, paperLatencyMs, ratioPairs, summarizeRows, type ColdStartBenchReport, type WrittenResults } from "../../bench/index.js";
import { isPoolMode, openHost } from "../../start/index.js";
import { printRoundStatus, ratioLines, repsOptions, repsPlan, resolveFunctions, resultsOptions, withProgressBar, writeAndPrint, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { accelOption, invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { formatBytes, formatMs, table } from "../format.js";

/** Each function's ratios with their intervals, as the text and --json print them. */
export function coldStartRatios(report: ColdStartBenchReport) {
  return report.functions.map((f) => ({ group: f.function, figures: benchRatios(report.rows, f.function, 1, ratioPairs(report.modes)) }));
}

/** The table `vhive bench coldstart` and `vhive demo` print: one line per function and mode, then the ratios. */
export function describeColdStarts(report: ColdStartBenchReport, written: WrittenResults): string {
  const pooled = report.modes.some(isPoolMode);
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
      s.wsDiskBytes ? formatBytes(s.wsDiskBytes) : "",
      ...(pooled ? [s.poolIdlePssBytes ? `${formatBytes(s.poolIdlePssBytes)} (${formatBytes(s.poolIdlePrivateBytes ?? 0)} private)` : ""] : []),
      paper === undefined ? "" : `${paper} ms`,
    ];
  });
  const ratios = ratioLines("function", coldStartRatios(report));
  const checks = report.functions.flatMap((f) => {
    const cost = checksCost(summarizeRows(report.rows), f.function);
    if (!cost) return [];
    const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
    const parts = [
      ...(cost.reseedMs === null ? [] : [`reseed ${formatMs(cost.reseedMs)}`]),
      ...(cost.verifyMs === null ? [] : [`page checks ${formatMs(cost.verifyMs)}${cost.measured ? "" : " (the pager's own time on them, at most what they add)"}`]),
    ];
    const against = cost.measured ? "prefetch-unchecked" : "an estimated start with neither";
    return [`${f.function}: the clone checks add ${percent(cost.share)} to prefetch (${formatMs(cost.prefetchMs)} against ${against}, ${formatMs(cost.uncheckedMs)}): ${parts.join(", ")}`];
  });
  return [
    `cold starts under ${report.accel}, ${report.reps} per mode, page cache evicted before each; time from QEMU spawn to the reply (warm: the call alone${pooled ? "; pool modes: from taking the pre-started VMM" : ""})`,
    ...(report.auto ? [describeAuto(report.auto)] : []),
    "",
    table([["function", "mode", "median", "min .. max", "faults", "read", "working set", "on disk", ...(pooled ? ["pooled VMM idle (PSS)"] : []), "paper (KVM)"], ...rows]),
    "",
    ...(ratios.length > 0 ? [...ratios, ""] : []),
    ...(checks.length > 0 ? [...checks, ""] : []),
    ...writtenLines(written),
  ].join("\n");
}

export const benchColdstartCommand = defineCommand({
  command: "coldstart",
  describe: "cold starts of each function in each mode (warm, boot, snapshot memory modes), with a report beside the paper's figures",
  builder: (yargs) =>
    repsOptions(resultsOptions(timeoutOption(accelOption(yargs)), "coldstart"), 3, "rounds per function (one start of every mode each)")
      .option("functions", { type: "string", default: "helloworld,json_serdes", describe: "comma-separated suite functions or images" })
      .option("modes", { type: "string", default: "warm,boot,vanilla,vanilla-4k,record,prefetch,floor", describe: `comma-separated, of ${BENCH_MODES.join(", ")}` }),
  run: async (args, context) => {
    const modes = orderModes(args.modes.split(",").filter(Boolean));
    const reps = repsPlan(args);
    assertSomethingToNarrow(reps, modes);
    const images = await resolveFunctions(args.functions, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgressBar("cold starts", context, (onProgress) =>
      benchColdStarts(host, images, { modes, reps, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onProgress, onRound: (status) => printRoundStatus(status, reps) }),
    );
    await writeAndPrint(report, args, "coldstart", context, describeColdStarts, { ratios: coldStartRatios(report) });
  },
});
