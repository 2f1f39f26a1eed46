import type { Invocation } from "../../orchestrator/index.js";
import { defineCommand } from "../command.js";
import { daemonClient } from "../daemon-client.js";
import { formatMs, table } from "../format.js";
import { invokeTimeoutOf } from "../function-options.js";

export const invokeCommand = defineCommand({
  command: "invoke <name>",
  describe: "invoke a deployed function through the daemon",
  builder: (yargs) =>
    yargs
      .positional("name", { type: "string", demandOption: true, describe: "function name" })
      .option("data", { type: "string", describe: "request data, as for vhive run (default: the function's default request)" })
      .option("timeout", { type: "string", describe: "how long this invocation may take before ERR_INVOKE_TIMEOUT, e.g. 2m (default: the function's, set by vhive deploy --timeout)" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object: response, start, totalMs, breakdown" }),
  run: async (args, context) => {
    const body = {
      ...(args.data === undefined ? {} : { data: args.data }),
      ...(args.timeout === undefined ? {} : { timeoutMs: invokeTimeoutOf({ timeout: args.timeout }) }),
    };
    const result = await daemonClient(context).request<Invocation>("POST", `/functions/${encodeURIComponent(args.name)}/invoke`, body);
    if (args.json) {
      context.printJson(result);
      return;
    }
    context.print(`reply: ${result.text}`);
    context.print("");
    context.print(
      table([
        ["total", formatMs(result.totalMs), `start ${result.start}, instance ${result.instance}`],
        ...Object.entries(result.breakdown).map(([phase, ms]) => [`  ${phase}`, formatMs(ms), ""]),
      ]),
    );
  },
});
