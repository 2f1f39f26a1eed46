import { exportImage, SHORT_ID_LENGTH } from "../../image/index.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";
import { formatBytes } from "../format.js";
import { withProgress } from "../progress.js";

export const imageExportCommand = defineCommand({
  command: "export <image> <file>",
  describe: "write an image as an OCI image archive (a tar that ctr images import, docker load and vhive image import read)",
  builder: (yargs) =>
    yargs
      .positional("image", { type: "string", demandOption: true, describe: "id, id prefix or name" })
      .positional("file", { type: "string", demandOption: true, describe: "the archive to write, e.g. helloworld.tar" })
      .option("name", { type: "string", describe: "reference to name the image by (default vhive.local/<image name>:latest)" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const exported = await withProgress(`exporting ${args.image}`, context.log, (onProgress) =>
      exportImage(new StatePaths(context.stateDir), args.image, args.file, { ref: args.name, signal: context.signal, onProgress }),
    );
    const { image, layer } = exported;
    if (args.json) {
      context.printJson({
        path: exported.path,
        ref: exported.ref.full,
        image: { id: image.id, name: image.name },
        bytes: exported.archiveBytes,
        manifestDigest: exported.manifestDigest,
        configDigest: exported.configDigest,
        layer: { digest: layer.digest, diffId: layer.diffId, bytes: layer.sizeBytes, ...layer.counts },
        lost: layer.lost,
      });
      return;
    }
    context.print(
      `exported ${image.name} ${image.id.slice(0, SHORT_ID_LENGTH)} as ${exported.ref.full} to ${exported.path} ` +
        `(${formatBytes(exported.archiveBytes)}, ${layer.counts.entries} entries)`,
    );
    const { sockets, xattrPaths } = layer.lost;
    if (sockets.length > 0) context.print(`left out: ${sockets.length} sockets, which a tar cannot hold (${sample(sockets)})`);
    if (xattrPaths.length > 0) context.print(`left out: the extended attributes of ${xattrPaths.length} files (${sample(xattrPaths)})`);
  },
});

function sample(paths: string[]): string {
  return paths.length <= 3 ? paths.join(", ") : `${paths.slice(0, 3).join(", ")}, ...`;
}
