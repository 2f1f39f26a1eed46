import { ImageStore } from "../../image/index.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";
import { imageJson, imageLine } from "../image-output.js";
import { table } from "../format.js";

export const imageLsCommand = defineCommand({
  command: "ls",
  describe: "list function images",
  builder: (yargs) => yargs.option("json", { type: "boolean", default: false, describe: "print a JSON array" }),
  run: async (args, context) => {
    const images = await new ImageStore(new StatePaths(context.stateDir)).list();
    if (args.json) context.printJson(images.map(imageJson));
    else if (images.length === 0) context.print("no images yet: vhive image build <recipe-dir> or vhive image import <archive>");
    else context.print(table([["ID", "NAME", "SIZE", "LISTENS", "SOURCE", "CREATED"], ...images.map(imageLine)]));
  },
});
