import type { InstanceInfo } from "../../orchestrator/index.js";
import type { FunctionRecord } from "../../store/index.js";
import { defineCommand } from "../command.js";
import { daemonClient } from "../daemon-client.js";
import { functionLine, FUNCTION_HEADER } from "../function-output.js";
import { table } from "../format.js";

export const lsCommand = defineCommand({
  command: "ls",
  describe: "list the functions deployed on the daemon and their instances",
  builder: (yargs) => yargs.option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const client = daemonClient(context);
    const [{ functions }, { instances }] = await Promise.all([
      client.request<{ functions: FunctionRecord[] }>("GET", "/functions"),
      client.request<{ instances: InstanceInfo[] }>("GET", "/instances"),
    ]);
    if (args.json) {
      context.printJson({ functions, instances });
      return;
    }
    if (functions.length === 0) {
      context.print("no functions deployed: vhive deploy <name> --image <ref>");
      return;
    }
    const count = (fn: string) => {
      const mine = instances.filter((instance) => instance.function === fn);
      return mine.length === 0 ? "0" : `${mine.length} (${mine.map((instance) => instance.state).join(", ")})`;
    };
    context.print(table([[...FUNCTION_HEADER, "INSTANCES"], ...functions.map((fn) => [...functionLine(fn), count(fn.name)])]));
  },
});
