import { benchDensity, checkInstances, DENSITY_MODES, parseDensityModes, summarizeDensity, type DensityReport, type WrittenResults } from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { resolveFunction, resultsOptions, withProgressBar, writeAndPrint, writtenLines } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { accelOption } from "../function-options.js";
import { formatBytes, formatMs, table } from "../format.js";

function describe(report: DensityReport, written: WrittenResults): string {
  const bytes = (value: number | null) => (value === null ? "" : formatBytes(value));
  const rows = summarizeDensity(report).map((s) => [
    s.mode,
    formatMs(s.startAllMs),
    formatMs(s.startMs.median),
    bytes(s.pssBytes),
    bytes(s.privateBytes),
    bytes(s.guestAnonBytes),
    bytes(s.guestPageCachePssBytes),
    bytes(s.otherPssBytes),
    bytes(s.pagerPssBytes),
    `${formatBytes(s.memAvailableBeforeBytes)} -> ${formatBytes(s.memAvailableAfterBytes)}`,
  ]);
  return [
    `${report.function}: ${report.instances} idle instances per mode under ${report.accel}, all answering; memory per instance (medians) of QEMU and its pager, from /proc/<pid>/smaps_rollup`,
    "guest private = anonymous copies of guest RAM; guest shared = guest RAM's page-cache pages (vanilla's snapshot file), PSS: 1/N of each in every instance",
    "",
    table([["mode", "start all", "median start", "PSS", "private", "guest private", "guest shared", "QEMU other", "pager", "MemAvailable before -> after"], ...rows]),
    "",
    ...writtenLines(written),
  ].join("\n");
}

export const benchDensityCommand = defineCommand({
  command: "density",
  describe: "many idle instances of one function at once, per start mode: the memory each holds (PSS, private), the host memory left, the time to start them all",
  builder: (yargs) =>
    resultsOptions(accelOption(yargs), "density")
      .option("function", { type: "string", default: "helloworld", describe: "suite function or image" })
      .option("instances", { type: "number", default: 10, describe: "instances kept running at once, per mode" })
      .option("modes", { type: "string", default: DENSITY_MODES.join(","), describe: `comma-separated, of ${DENSITY_MODES.join(", ")} (boot: booted, as a reference)` }),
  run: async (args, context) => {
    const instances = checkInstances(args.instances);
    const modes = parseDensityModes(args.modes);
    const image = await resolveFunction(args.function, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgressBar("density", context, (onProgress) => benchDensity(host, image, { instances, modes, signal: context.signal, onProgress }));
    await writeAndPrint(report, args, "density", context, describe, { summary: summarizeDensity(report) });
  },
});
