import { benchColdStarts, type BenchMode } from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { resolveFunctions, resultsOptions, withProgressBar, writeAndPrint } from "../bench-output.js";
import { defineCommand } from "../command.js";
import { invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { describeColdStarts } from "./bench-coldstart.js";

/** helloworld, and json_serdes: it parses megabytes of JSON, so its working set is not trivial. */
export const DEMO_FUNCTIONS = "helloworld,json_serdes";
export const DEMO_MODES: BenchMode[] = ["warm", "boot", "vanilla", "record", "prefetch"];

export const demoCommand = defineCommand({
  command: "demo",
  describe: "the whole path once: prepare the host, build two functions, and compare warm, boot and snapshot cold starts (vanilla, REAP record and prefetch) in a small report",
  builder: (yargs) =>
    resultsOptions(timeoutOption(yargs), "demo", "the report")
      .option("reps", { type: "number", default: 1, describe: "starts per function and mode (1-2 keeps it to a few minutes)" })
      .option("functions", { type: "string", default: DEMO_FUNCTIONS, describe: "comma-separated suite functions" }),
  run: async (args, context) => {
    const host = await openHost({ stateDir: context.stateDir, accel: "auto", log: context.log });
    if (!args.json) context.print(`host: QEMU ${host.qemu.version}, guest kernel ${host.guest.kernel.version}, accelerator ${host.accel} (${host.accelProbe.reason})`);
    const images = await resolveFunctions(args.functions, context);
    const report = await withProgressBar("cold starts", context, (onProgress) => benchColdStarts(host, images, { modes: DEMO_MODES, reps: args.reps, invokeTimeoutMs: invokeTimeoutOf(args), signal: context.signal, onProgress }));
    await writeAndPrint(report, args, "demo", context, (done, written) =>
      ["", describeColdStarts(done, written), "", "more: `vhive bench coldstart --help`, `vhive bench reuse`, `vhive bench concurrency`, `vhive bench load`"].join("\n"),
    );
  },
});
