import { defineCommand } from "../command.js";
import { daemonClient } from "../daemon-client.js";

export const rmCommand = defineCommand({
  command: "rm <name>",
  describe: "remove a deployed function (its instances stop; its snapshots are kept)",
  builder: (yargs) => yargs.positional("name", { type: "string", demandOption: true, describe: "function name" }),
  run: async (args, context) => {
    await daemonClient(context).request("DELETE", `/functions/${encodeURIComponent(args.name)}`);
    context.print(`removed ${args.name}`);
  },
});
