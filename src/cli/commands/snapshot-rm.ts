import { SnapshotStore } from "../../snapshot/index.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";

export const snapshotRmCommand = defineCommand({
  command: "rm <snapshot>",
  describe: "remove a snapshot and everything stored with it",
  builder: (yargs) => yargs.positional("snapshot", { type: "string", demandOption: true, describe: "snapshot id or id prefix" }),
  run: async (args, context) => {
    const id = await new SnapshotStore(new StatePaths(context.stateDir)).remove(args.snapshot);
    context.print(`removed snapshot ${id}`);
  },
});
