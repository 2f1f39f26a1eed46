// Copies non-TypeScript files that modules read at run time (src/**/*.sh) into dist/.
import { cp, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { mkdir } from "node:fs/promises";

const assets = (await readdir("src", { recursive: true })).filter((file) => file.endsWith(".sh"));
for (const file of assets) {
  await mkdir(dirname(join("dist", file)), { recursive: true });
  await cp(join("src", file), join("dist", file));
}
