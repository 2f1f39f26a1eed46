import { SnapshotStore } from "../../snapshot/index.js";
import { StatePaths } from "../../shared/paths.js";
import { verifySnapshot, type FileVerdict } from "../../start/index.js";
import { defineCommand } from "../command.js";
import { table } from "../format.js";

function verdict(file: FileVerdict): string {
  if (file.ok) return file.pages === undefined ? "ok" : `ok (${file.pages} pages)`;
  if (file.problem) return `DAMAGED: ${file.problem}`;
  const first = file.badOffsets?.[0];
  return `DAMAGED: ${file.badPages} of ${file.pages} pages${first === undefined ? "" : `, the first at offset ${first} (0x${first.toString(16)})`}`;
}

export const snapshotVerifyCommand = defineCommand({
  command: "verify <snapshot>",
  describe: "check every file of a snapshot end to end: sizes, the device state's digest, every page against its checksum, the working set",
  builder: (yargs) =>
    yargs
      .positional("snapshot", { type: "string", demandOption: true, describe: "snapshot id, id prefix, or function name" })
      .option("json", { type: "boolean", default: false, describe: "print JSON" }),
  run: async (args, context) => {
    const paths = new StatePaths(context.stateDir);
    const snapshot = await new SnapshotStore(paths).resolve(args.snapshot, { includeQuarantined: true });
    const result = await verifySnapshot(paths, snapshot);
    if (args.json) {
      context.printJson(result);
    } else {
      context.print(table([["FILE", "ROLE", "RESULT"], ...result.files.map((file) => [file.file, file.role, verdict(file)])]));
      const { id } = result.snapshot;
      context.print(
        result.ok
          ? `snapshot ${id} is whole`
          : `snapshot ${id} is damaged: remove it with \`vhive snapshot rm ${id}\` and create a new one (a damaged working set alone: record it again with \`vhive snapshot restore ${id} --mode record\`)`,
      );
    }
    return result.ok ? 0 : 1;
  },
});
