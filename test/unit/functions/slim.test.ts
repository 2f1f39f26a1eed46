/** functions/_common/slim.sh against fake dpkg tools: it purges what is installed of its lists and of its arguments. */
import { execFileSync } from "node:child_process";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { packagePath } from "../../../src/shared/package-root.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Runs slim.sh with `args` where dpkg says `installed` are installed; returns what dpkg --purge got and what it printed. */
async function slim(installed: string[], args: string[]): Promise<{ purged: string; output: string }> {
  const bin = await makeTempDir("slim-test");
  cleanups.push(() => bin.remove());
  const log = join(bin.path, "purged");
  const tools: Record<string, string> = {
    // dpkg-query -W -f='${Status}' PACKAGE: the package is the last argument.
    "dpkg-query": `#!/bin/sh\nfor package; do :; done\ncase " ${installed.join(" ")} " in *" $package "*) printf 'install ok installed';; *) exit 1;; esac\n`,
    dpkg: `#!/bin/sh\necho "$@" >> ${log}\n`,
    du: `#!/bin/sh\nif [ -f ${log} ]; then printf '900\\t/\\n'; else printf '1000\\t/\\n'; fi\n`,
  };
  for (const [name, script] of Object.entries(tools)) {
    await writeFile(join(bin.path, name), script);
    await chmod(join(bin.path, name), 0o755);
  }
  const output = execFileSync("sh", [packagePath("functions", "_common", "slim.sh"), ...args], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin.path}:${process.env.PATH}` },
  });
  return { purged: await readFile(log, "utf8").catch(() => ""), output };
}

describe("slim.sh", () => {
  it("purges the installed packages of its lists and the ones named as arguments, and says how much that saved", async () => {
    const { purged, output } = await slim(["gcc", "libllvm15", "libfoo-dev"], ["libfoo-dev", "libbar-dev"]);
    expect(purged.trim()).toBe("--purge --force-depends gcc libllvm15 libfoo-dev");
    expect(output.trim()).toBe("slim: purged gcc libllvm15 libfoo-dev (100 MB)");
  });

  it("does nothing when none of them is installed", async () => {
    expect(await slim([], ["libbar-dev"])).toEqual({ purged: "", output: "" });
  });
});
