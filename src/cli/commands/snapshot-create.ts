import { createSnapshot, openHost } from "../../start/index.js";
import { defineCommand } from "../command.js";
import { imageFromRef, sizeOptions, startOptions, startOptionsOf } from "../function-options.js";
import { withProgress } from "../progress.js";
import { snapshotJson, snapshotLine } from "../snapshot-output.js";
import { formatMs, table } from "../format.js";

export const snapshotCreateCommand = defineCommand({
  command: "create <image>",
  describe: "boot an image, warm the function up, and save the VM as a snapshot",
  builder: (yargs) =>
    startOptions(
      sizeOptions(
        yargs
          .positional("image", { type: "string", demandOption: true, describe: "image id, id prefix, name, or a recipe directory" })
          .option("warmup", { type: "number", default: 1, describe: "invocations before the snapshot is taken" })
          .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
      ),
    ),
  run: async (args, context) => {
    const image = await imageFromRef(args.image, context);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const snapshot = await withProgress(`snapshotting ${image.name}`, context.log, () =>
      createSnapshot(host, image, { memMib: args.memory, vcpus: args.vcpus, warmup: args.warmup, ...startOptionsOf(args, context) }),
    );
    if (args.json) context.printJson(snapshotJson(snapshot));
    else {
      const { createMs, checksumMs } = snapshot.meta;
      context.print(table([snapshotLine(snapshot)]));
      // What checking every page later costs now: summing the memory file as it is saved.
      context.print(`created in ${formatMs(createMs)} (boot, warm-up, save), of which page checksums ${formatMs(checksumMs)} (${((100 * checksumMs) / createMs).toFixed(1)}%)`);
    }
  },
});
