/**
 * The README against what it describes: its two commands, its command table, the recipe files it
 * shows, the defaults it names. A README that drifts from the code fails here, as
 * test/unit/shared/errors.test.ts keeps docs/errors.md in step with the codes.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { DEMO_MODES } from "../../../src/cli/commands/demo.js";
import { DEFAULT_INVOKE_TIMEOUT_MS } from "../../../src/invoke/index.js";
import { DEPLOY_DEFAULTS } from "../../../src/orchestrator/index.js";
import { packagePath } from "../../../src/shared/package-root.js";

const read = (...path: string[]) => readFile(packagePath(...path), "utf8");
const readme = await read("README.md");

/** The fenced code blocks of a language, in order. */
function blocks(language: string): string[] {
  return [...readme.matchAll(new RegExp("^```" + language + "\\n([\\s\\S]*?)^```$", "gm"))].map((match) => match[1]!);
}

/** The command table's row whose first cell starts with `command`. */
function row(command: string): string {
  const rows = readme.split("\n").filter((line) => line.startsWith(`| \`${command}`));
  expect(rows, `one row for ${command}`).toHaveLength(1);
  return rows[0]!;
}

describe("README", () => {
  it("starts with exactly two commands, run as root without sudo, and says how to run them with sudo right under them", () => {
    const [first] = blocks("sh");
    const commands = first!.trim().split("\n");
    expect(commands.map((line) => line.replace(/\s+#.*$/, ""))).toEqual(["bash scripts/demo.sh", "bash scripts/test.sh"]);
    const afterBlock = readme.slice(readme.indexOf("\n```\n", readme.indexOf("```sh")) + 5);
    const under = afterBlock.trimStart().split("\n\n")[0]!;
    expect(under).toContain("as root");
    expect(under).toContain("`sudo bash\nscripts/demo.sh`");
    expect(under).toContain("`sudo bash scripts/test.sh`");
  });

  it("the scripts those commands run call no sudo (a fresh Debian 12 has none)", async () => {
    for (const script of ["demo.sh", "test.sh", "setup.sh"]) {
      const text = await read("scripts", script);
      // Lines that run sudo; messages (echo) and comments may name it.
      const calls = text.split("\n").filter((line) => !/^\s*(echo|#)/.test(line) && /^\s*sudo\s|[;&|(]\s*sudo\s/.test(line));
      expect(calls, script).toEqual([]);
    }
  });

  it("says most of vSwarm's functions serve their own service, and links the example", () => {
    expect(readme).toContain("Most of vSwarm's\nstandalone functions serve a service of their own, not `helloworld.Greeter/SayHello`");
    expect(readme).toContain("#### A function with its own service");
    expect(readme).toContain("[docs/examples/wordcount](docs/examples/wordcount)");
  });

  it("shows the recipes and the .proto exactly as the files are", async () => {
    const json = blocks("json");
    expect(json).toContain(await read("functions", "helloworld", "recipe.json"));
    expect(json).toContain(await read("docs", "examples", "wordcount", "recipe.json"));
    expect(blocks("proto")).toEqual([await read("docs", "examples", "wordcount", "wordcount.proto")]);
  });

  it("the example's request has two fields and its recipe names its own method", async () => {
    const recipe = JSON.parse(await read("docs", "examples", "wordcount", "recipe.json"));
    expect(recipe).toMatchObject({ method: "wordcount.WordCount/Count", proto: "wordcount.proto" });
    expect(recipe.files).toContainEqual({ src: "data", dest: "/app/data" }); // a directory
    const proto = await read("docs", "examples", "wordcount", "wordcount.proto");
    expect(/message CountRequest \{([^}]*)\}/.exec(proto)![1]!.trim().split("\n")).toHaveLength(2);
  });

  it("the command table shows --method and --proto for image import and deploy, and --timeout where it applies", () => {
    for (const option of ["--method", "--proto"]) {
      expect(row("vhive image import")).toContain(option);
      expect(row("vhive deploy")).toContain(option);
    }
    for (const command of ["vhive run", "vhive snapshot restore", "vhive deploy", "vhive invoke", "vhive demo"]) expect(row(command)).toContain("--timeout");
  });

  it("the command table shows deploy's pool options and the pooled modes of restore and coldstart; the mode table has them", () => {
    expect(DEPLOY_DEFAULTS.poolDepth).toBe(0);
    for (const option of ["[--pool N]", "[--pool-installed]"]) expect(row("vhive deploy")).toContain(option);
    expect(row("vhive snapshot restore")).toContain("`pool` and `pool-installed`");
    expect(row("vhive bench coldstart")).toContain("`pool`, `pool-installed`");
    for (const mode of ["pool", "pool-installed"]) expect(readme).toMatch(new RegExp(`^\\| \`${mode}\` \\| on a pre-started VMM`, "m"));
    expect(readme).toContain("--pool 0] [--pool-installed]");
  });

  it("names the timeouts' defaults as the code has them", () => {
    expect(DEFAULT_INVOKE_TIMEOUT_MS).toBe(30_000);
    expect(DEPLOY_DEFAULTS.invokeTimeoutMs).toBe(60_000);
    expect(readme).toContain("take it (default 30 s); on the daemon it belongs to the function, `vhive deploy --timeout`\n(default 60 s)");
    expect(row("vhive run")).toContain("[--timeout 30s]");
    expect(row("vhive deploy")).toContain("[--timeout 60s]");
  });

  it("lists vhive demo's modes as it runs them, vanilla-4k among them", () => {
    expect(DEMO_MODES).toContain("vanilla-4k");
    expect(row("vhive demo")).toContain(`(${DEMO_MODES.join(", ")})`);
    expect(readme.replace(/\n/g, " ")).toContain(`in modes ${DEMO_MODES.slice(0, -1).join(", ")} and ${DEMO_MODES.at(-1)},`);
  });

  it("documents slim.sh for users' own images, with the build step the suite uses", async () => {
    expect(readme).toContain("`slim.sh` is reusable for your own large images");
    const step = "sh /tmp/slim.sh && rm /tmp/slim.sh";
    expect(readme).toContain(`"${step}"`);
    expect(JSON.parse(await read("functions", "cnn_serving", "recipe.json")).build).toContain(step);
  });
});
