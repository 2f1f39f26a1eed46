import shellQuote from "shell-quote";
import { importImage } from "../../image/index.js";
import { VhiveError } from "../../shared/errors.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";
import { imageJson, imageLine } from "../image-output.js";
import { withProgress } from "../progress.js";
import { table } from "../format.js";

function parseArgv(text: string): string[] {
  const words = shellQuote.parse(text);
  if (!words.every((word): word is string => typeof word === "string")) {
    throw new VhiveError("ERR_VALIDATION", `--entrypoint ${text}: only plain words and quotes are allowed, no shell operators`);
  }
  return words;
}

export const imageImportCommand = defineCommand({
  command: "import <archive>",
  describe: "import an OCI image layout directory or a docker-archive tar as a function image",
  builder: (yargs) =>
    yargs
      .positional("archive", { type: "string", demandOption: true, describe: "OCI layout dir or docker save tar" })
      .option("ref", { type: "string", describe: "which image of an OCI index (its ref name)" })
      .option("name", { type: "string", describe: "name to list the image under" })
      .option("entrypoint", { type: "string", describe: "command to run instead of the image's Entrypoint+Cmd" })
      .option("port", { type: "number", describe: "port the function listens on (default: the dev.vhive.port label, else the one exposed port)" })
      .option("protocol", { choices: ["grpc", "http"] as const, describe: "how the function is called (default: the dev.vhive.protocol label, else http)" })
      .option("method", { type: "string", describe: "gRPC method, package.Service/Method (default: the dev.vhive.grpc.method label)" })
      .option("proto", { type: "string", describe: ".proto file describing the gRPC method (default: the dev.vhive.proto label)" })
      .option("force", { type: "boolean", default: false, describe: "re-import even if cached" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const image = await withProgress(`importing ${args.archive}`, context.log, (onProgress) =>
      importImage(new StatePaths(context.stateDir), args.archive, {
        ref: args.ref,
        name: args.name,
        argv: args.entrypoint === undefined ? undefined : parseArgv(args.entrypoint),
        port: args.port,
        protocol: args.protocol,
        method: args.method,
        protoPath: args.proto,
        force: args.force,
        signal: context.signal,
        onProgress,
      }),
    );
    if (args.json) context.printJson(imageJson(image));
    else context.print(table([imageLine(image)]));
  },
});
