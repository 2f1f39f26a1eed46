import { SnapshotStore } from "../../snapshot/index.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";
import { snapshotJson, snapshotLine } from "../snapshot-output.js";
import { table } from "../format.js";

export const snapshotLsCommand = defineCommand({
  command: "ls",
  describe: "list snapshots (and damaged ones, which can only be removed)",
  builder: (yargs) => yargs.option("json", { type: "boolean", default: false, describe: "print JSON" }),
  run: async (args, context) => {
    const { snapshots, damaged } = await new SnapshotStore(new StatePaths(context.stateDir)).list();
    if (args.json) {
      context.printJson({ snapshots: snapshots.map(snapshotJson), damaged });
      return;
    }
    if (snapshots.length === 0 && damaged.length === 0) context.print("no snapshots yet: vhive snapshot create <image>");
    if (snapshots.length > 0) context.print(table([["ID", "FUNCTION", "IMAGE", "MEMORY", "STATE", "ACCEL", "CREATED"], ...snapshots.map(snapshotLine)]));
    for (const broken of damaged) context.print(`damaged: ${broken.id} (${broken.function}): ${broken.problem}`);
  },
});
