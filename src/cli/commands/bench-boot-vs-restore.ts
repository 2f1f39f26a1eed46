import { benchBootVsRestore, type BootVsRestoreReport } from "../../bench/index.js";
import { BOOT_PHASES, RESTORE_PHASES, type BootPhase, type RestorePhase } from "../../metrics/index.js";
import { openHost } from "../../start/index.js";
import { packagePath } from "../../shared/package-root.js";
import { defineCommand } from "../command.js";
import { formatBytes, formatMs, table } from "../format.js";
import { accelOption, imageFromRef, invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { withProgress } from "../progress.js";

function describe(report: BootVsRestoreReport): string {
  const range = (s: { median: number; min: number; max: number }) => `${formatMs(s.median)}  (${formatMs(s.min)} .. ${formatMs(s.max)})`;
  return [
    `${report.function} under ${report.accel}, ${report.reps} cold starts each, page cache evicted before each`,
    "",
    table([
      ["", "time to first response: median (min .. max)"],
      ["boot", range(report.boot.totalMs)],
      ["restore (vanilla)", range(report.restore.totalMs)],
      ["speedup", `${report.speedup.toFixed(1)}x`],
    ]),
    "",
    "boot breakdown (medians)",
    table((Object.keys(BOOT_PHASES) as BootPhase[]).map((phase) => [`  ${phase}`, formatMs(report.boot.breakdown[phase])])),
    "restore breakdown (medians)",
    table([
      ...(Object.keys(RESTORE_PHASES) as RestorePhase[]).map((phase) => [`  ${phase}`, formatMs(report.restore.breakdown[phase])]),
      ["  majorFaults", String(report.restore.majorFaults)],
      ["  bytesRead", formatBytes(report.restore.bytesRead)],
    ]),
  ].join("\n");
}

export const benchBootVsRestoreCommand = defineCommand({
  command: "boot-vs-restore [image]",
  describe: "cold boots against cold vanilla snapshot restores of one function, side by side",
  builder: (yargs) =>
    timeoutOption(accelOption(yargs))
      .positional("image", { type: "string", describe: "image or recipe directory (default functions/helloworld)" })
      .option("reps", { type: "number", default: 3, describe: "cold starts of each kind" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object with every run" }),
  run: async (args, context) => {
    const image = await imageFromRef(args.image ?? packagePath("functions", "helloworld"), context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgress(`boot vs restore of ${image.name}`, context.log, (update) =>
      benchBootVsRestore(host, image, { reps: args.reps, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onRun: (done, total, what) => update(`${done}/${total} (${what})`) }),
    );
    if (args.json) context.printJson(report);
    else context.print(describe(report));
  },
});
