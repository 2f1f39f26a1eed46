import { openHost, runOnce } from "../../start/index.js";
import { defineCommand } from "../command.js";
import { imageFromRef, sizeOptions, startOptions, startOptionsOf } from "../function-options.js";
import { describeRun } from "../run-output.js";

export const runCommand = defineCommand({
  command: "run <image>",
  describe: "boot an image in a microVM, wait until the function answers, invoke it once, stop",
  builder: (yargs) =>
    startOptions(
      sizeOptions(
        yargs
          .positional("image", { type: "string", demandOption: true, describe: "image id, id prefix, name, or a recipe directory" })
          .option("data", { type: "string", describe: "request: the gRPC request's string field or a JSON message, or an HTTP POST body (default: the recipe's first input; without inputs, \"world\" for gRPC and a GET for HTTP)" })
          .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      ),
    ),
  run: async (args, context) => {
    const image = await imageFromRef(args.image, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const result = await runOnce(host, image, args.data, { memMib: args.memory, vcpus: args.vcpus, ...startOptionsOf(args, context) });
    if (args.json) context.printJson(result);
    else context.print(describeRun(result));
  },
});
