import type { InvocationRecord } from "../../store/index.js";
import { defineCommand } from "../command.js";
import { daemonClient } from "../daemon-client.js";
import { formatMs, formatTimestamp, table } from "../format.js";

export const logsCommand = defineCommand({
  command: "logs <name>",
  describe: "the recorded invocations of a function: when, how it started, how long, errors, and what the daemon did to serve them",
  builder: (yargs) =>
    yargs
      .positional("name", { type: "string", demandOption: true, describe: "function name" })
      .option("limit", { type: "number", default: 50, describe: "the newest N invocations" })
      .option("json", { type: "boolean", default: false, describe: "print a JSON array" }),
  run: async (args, context) => {
    const { invocations } = await daemonClient(context).request<{ invocations: InvocationRecord[] }>(
      "GET",
      `/functions/${encodeURIComponent(args.name)}/invocations?limit=${Math.max(1, Math.floor(args.limit))}`,
    );
    if (args.json) {
      context.printJson(invocations);
      return;
    }
    if (invocations.length === 0) {
      context.print(`no invocations of ${args.name} yet`);
      return;
    }
    context.print(
      table([
        ["#", "AT", "START", "TOTAL", "INSTANCE", "OUTCOME"],
        ...invocations.map((record) => [
          String(record.id),
          formatTimestamp(record.at, true),
          record.start ?? "-",
          formatMs(record.totalMs),
          record.instance ?? "-",
          record.status === "ok" ? "ok" : `${record.errorCode}: ${record.errorMessage}`,
        ]),
      ]),
    );
    // What the daemon did to serve a request (a damaged snapshot recovered from), under the table.
    for (const record of invocations) if (record.note) context.print(`#${record.id}: ${record.note}`);
  },
});
