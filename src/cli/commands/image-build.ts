import { buildImage } from "../../image/index.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";
import { imageJson, imageLine } from "../image-output.js";
import { withProgress } from "../progress.js";
import { table } from "../format.js";

export const imageBuildCommand = defineCommand({
  command: "build <recipe>",
  describe: "build a function image from a recipe directory (Debian packages via mmdebstrap, into ext4)",
  builder: (yargs) =>
    yargs
      .positional("recipe", { type: "string", demandOption: true, describe: "directory with recipe.json" })
      .option("force", { type: "boolean", default: false, describe: "rebuild even if cached" })
      .option("apt-sources", { type: "string", describe: "apt sources file for mmdebstrap (default: the host's)" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const image = await withProgress(`building ${args.recipe}`, context.log, (onProgress) =>
      buildImage(new StatePaths(context.stateDir), args.recipe, {
        force: args.force,
        aptSources: args["apt-sources"],
        signal: context.signal,
        onProgress,
      }),
    );
    if (args.json) context.printJson(imageJson(image));
    else context.print(table([imageLine(image)]));
  },
});
