import { benchColdStarts, defaultOutDir, writeResults, type BenchMode } from "../../bench/index.js";
import { openHost } from "../../orchestrator/index.js";
import { resolveFunctions, withProgressBar } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { describeColdStarts } from "./bench-coldstart.js";

/** helloworld, and json_serdes: it parses megabytes of JSON, so its working set is not trivial. */
export const DEMO_FUNCTIONS = "helloworld,json_serdes";
export const DEMO_MODES: BenchMode[] = ["warm", "boot", "vanilla", "record", "prefetch"];

export const demoCommand = defineCommand({
  command: "demo",
  describe: "the whole path once: prepare the host, build two functions, and compare warm, boot and snapshot cold starts (vanilla, REAP record and prefetch) in a small report",
  builder: (yargs) =>
    yargs
      .option("reps", { type: "number", default: 1, describe: "starts per function and mode (1-2 keeps it to a few minutes)" })
      .option("functions", { type: "string", default: DEMO_FUNCTIONS, describe: "comma-separated suite functions" })
      .option("out", { type: "string", describe: "directory for the report (default: <state>/results/<time>-demo)" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const host = await openHost({ stateDir: context.stateDir, accel: "auto", log: context.log });
    if (!args.json) context.print(`host: QEMU ${host.qemu.version}, guest kernel ${host.guest.kernel.version}, accelerator ${host.accel} (${host.accelProbe.reason})`);
    const images = await resolveFunctions(args.functions, context);
    const report = await withProgressBar("cold starts", context, (onProgress) => benchColdStarts(host, images, { modes: DEMO_MODES, reps: args.reps, signal: context.signal, onProgress }));
    const written = await writeResults(args.out ?? defaultOutDir(context.stateDir, "demo"), report);
    if (args.json) context.printJson({ ...report, outDir: written.outDir, files: written.files });
    else context.print(["", describeColdStarts(report, written), "", "more: `vhive bench coldstart --help`, `vhive bench reuse`, `vhive bench concurrency`"].join("\n"));
  },
});
