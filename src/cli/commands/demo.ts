import { openHost, runOnce } from "../../orchestrator/index.js";
import { packagePath } from "../../shared/package-root.js";
import { defineCommand } from "../command.js";
import { imageFromRef } from "../function-options.js";
import { describeRun } from "../run-output.js";

export const demoCommand = defineCommand({
  command: "demo",
  describe: "the whole path once: prepare the host, build the helloworld image, boot it in a microVM, call it, stop",
  builder: (yargs) =>
    yargs
      .option("data", { type: "string", default: "vhive", describe: "name to greet" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const host = await openHost({ stateDir: context.stateDir, accel: "auto", log: context.log });
    if (!args.json) context.print(`host: QEMU ${host.qemu.version}, guest kernel ${host.guest.kernel.version}, accelerator ${host.accel} (${host.accelProbe.reason})`);
    const image = await imageFromRef(packagePath("functions", "helloworld"), context);
    const result = await runOnce(host, image, args.data, { signal: context.signal });
    if (args.json) context.printJson(result);
    else context.print(describeRun(result));
  },
});
