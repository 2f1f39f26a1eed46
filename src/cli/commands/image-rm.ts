import { ImageStore } from "../../image/index.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";

export const imageRmCommand = defineCommand({
  command: "rm <image>",
  describe: "remove a function image",
  builder: (yargs) => yargs.positional("image", { type: "string", demandOption: true, describe: "id, id prefix or name" }),
  run: async (args, context) => {
    const store = new ImageStore(new StatePaths(context.stateDir));
    const image = await store.resolve(args.image);
    await store.remove(image.id);
    context.print(`removed ${image.name} ${image.id.slice(0, 12)}`);
  },
});
