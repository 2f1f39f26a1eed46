import { runDoctor } from "../doctor-checks.js";
import { defineCommand } from "../command.js";
import { formatBytes, table } from "../format.js";

export const doctorCommand = defineCommand({
  command: "doctor",
  describe: "check that this host can run function microVMs (QEMU, guest kernel, accelerator, userfaultfd, disk)",
  builder: (yargs) => yargs.option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const report = await runDoctor(context.stateDir, context.log);
    if (args.json) {
      context.printJson(report);
    } else {
      const rows = report.checks.map((check) => [check.ok ? "ok" : "FAIL", check.name, check.detail]);
      context.print(table(rows));
      for (const check of report.checks.filter((c) => !c.ok && c.remedy)) context.print(`\n${check.name}: ${check.remedy}`);
      if (report.freeDiskBytes !== null) context.print(`\nstate directory: ${report.stateDir} (${formatBytes(report.freeDiskBytes)} free)`);
      context.print(report.ok ? "\nthis host is ready" : "\nthis host is not ready: fix the checks marked FAIL");
    }
    return report.ok ? 0 : 1;
  },
});
