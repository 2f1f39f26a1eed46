import { benchReap, describeAuto, formatBounds, formatHalfWidth, REAP_MODES, type FunctionReport, type Interval, type ReapReport, fmtPct } from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { printRoundStatus, repsOptions, repsPlan, resolveFunctions } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { formatBytes, formatMs, table } from "../format.js";
import { accelOption, invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { withProgress } from "../progress.js";

/** "95% 0.97..1.08 (±5.4%)": an interval in the last column, so each line starts as it always has. */
function intervalCell(interval: Interval | undefined): string {
  const bounds = interval ? formatBounds(interval) : "";
  return bounds ? `95% ${bounds} (${formatHalfWidth(interval!)})` : "";
}

function check(label: string, value: string, ok: boolean, target: string, interval?: Interval): string[] {
  return [label, value, ok ? "ok" : "MISSED", target, intervalCell(interval)];
}

function figure(label: string, value: string, interval?: Interval): string[] {
  return [label, value, "", "", intervalCell(interval)];
}

function describeFunction(f: FunctionReport): string {
  const rows = REAP_MODES.map((mode) => {
    const m = f.modes[mode];
    return [mode, formatMs(m.totalMs.median), `${formatMs(m.totalMs.min)} .. ${formatMs(m.totalMs.max)}`, formatMs(m.stallMs), String(m.faults), formatBytes(m.bytesRead), formatMs(m.fetchWsMs), formatMs(m.installWsMs)];
  });
  const i = f.intervals;
  const checks = [
    check("memory stall of vanilla-4k removed by prefetch", fmtPct(f.stallRemoved), f.stallRemoved >= 0.9, ">= 90%", i.stallRemoved),
    check("prefetch / floor", f.prefetchOverFloor.toFixed(2), f.prefetchOverFloor <= 1.1, "<= 1.10", i.prefetchOverFloor),
    check("speedup of prefetch over vanilla-4k", `${f.speedupOverVanilla4k.toFixed(2)}x`, f.speedupOverVanilla4k >= 1.5, ">= 1.5x on the heavier function", i.speedupOverVanilla4k),
    figure("speedup of prefetch over vanilla", `${f.speedupOverVanilla.toFixed(2)}x`, i.speedupOverVanilla),
    check("record / vanilla-4k", f.recordOverVanilla4k.toFixed(2), f.recordOverVanilla4k <= 1.5, "<= 1.5", i.recordOverVanilla4k),
  ];
  if (f.concurrency) {
    const c = f.concurrency;
    const medians = Object.entries(c.modes).map(([mode, s]) => `${mode} ${formatMs(s.median)}`).join(", ");
    checks.push(
      figure(`${c.level} concurrent cold starts, medians (${c.rounds} rounds)`, medians),
      check(`${c.level} concurrent: speedup of prefetch over vanilla`, `${c.speedup.toFixed(2)}x`, c.speedup >= 1.5, ">= 1.5x", c.intervals.speedup),
      figure(`${c.level} concurrent: speedup of prefetch over vanilla-4k`, `${c.speedupOverVanilla4k.toFixed(2)}x`, c.intervals.speedupOverVanilla4k),
      figure(`${c.level} concurrent: speedup of the floor over vanilla (the bound)`, `${c.floorOverVanilla.toFixed(2)}x`, c.intervals.floorOverVanilla),
    );
  }
  return [
    `${f.function}: working set ${f.wsPages} pages (${formatBytes(f.wsBytes)}), snapshot ${f.snapshotId}, ${f.rounds} rounds`,
    table([["mode", "median", "min .. max", "stall", "faults", "bytes read", "fetch WS", "install WS"], ...rows]),
    "",
    table(checks),
  ].join("\n");
}

function describe(report: ReapReport): string {
  return [
    `REAP cold starts under ${report.accel}, ${report.reps} per mode, page cache evicted before each; time from QEMU spawn to the reply`,
    "stall = median minus the floor's median (the floor installs every page before resume and leaves that out)",
    "95% intervals by bootstrap over the interleaved rounds (each round: one start of every mode)",
    ...(report.auto ? [describeAuto(report.auto)] : []),
    "",
    ...report.functions.map(describeFunction).flatMap((text) => [text, ""]),
  ].join("\n");
}

export const benchReapCommand = defineCommand({
  command: "reap",
  describe: "REAP against the vanilla baselines: cold starts per memory mode, and concurrent cold starts",
  builder: (yargs) =>
    repsOptions(timeoutOption(accelOption(yargs)), 5, "rounds per function (one cold start per mode each)")
      .option("functions", { type: "string", default: "helloworld,json_serdes", describe: "comma-separated suite functions or images" })
      .option("concurrency", { type: "number", default: 4, describe: "concurrent cold starts to compare (0 to skip)" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object with every row" }),
  run: async (args, context) => {
    const reps = repsPlan(args);
    const images = await resolveFunctions(args.functions, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgress("REAP benchmark", context.log, (update) =>
      benchReap(host, images, { reps, concurrency: args.concurrency, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onRun: update, onRound: (status) => printRoundStatus(status, reps) }),
    );
    if (args.json) context.printJson(report);
    else context.print(describe(report));
  },
});
