/** `vhive bench density` end to end: a few idle instances per mode, all answering, their memory from /proc. */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { procMemoryProbe } from "../../src/vm/index.js";
import { makeTempDir } from "../../src/shared/tmp.js";
import { expectNothingLeft, runCli } from "./harness.js";

const out = await makeTempDir("bench-density-test");
afterAll(() => out.remove());

const MIB = 1024 * 1024;

describe("vhive bench density", () => {
  it("2 instances of helloworld in vanilla and prefetch: all answer, vanilla's guest RAM is shared page cache, prefetch's private copies", async () => {
    const dir = join(out.path, "results");
    const { code, stdout, stderr } = await runCli(["bench", "density", "--function", "helloworld", "--instances", "2", "--modes", "vanilla,prefetch", "--out", dir, "--json"]);
    expect(code, stderr).toBe(0);
    const printed = JSON.parse(stdout);
    expect((await readdir(dir)).sort()).toEqual(["density.csv", "density.json", "density.svg", "report.md"]);
    expect(printed.rows).toHaveLength(4);
    for (const row of printed.rows) {
      expect(row.reply).toBe("Hello, world!");
      expect(row.pssBytes).toBeGreaterThan(10 * MIB);
      expect(row.privateBytes).toBeGreaterThan(0);
      expect(row.guestPssBytes, `${row.mode} ${row.instance}: guest RAM told apart`).toBeGreaterThan(0);
      expect(row.otherPssBytes).toBeGreaterThan(0);
    }
    const vanilla = printed.rows.filter((row: { mode: string }) => row.mode === "vanilla");
    const prefetch = printed.rows.filter((row: { mode: string }) => row.mode === "prefetch");
    // vanilla maps the snapshot file: most of what its guest holds is page cache shared by both
    for (const row of vanilla) {
      expect(row.guestPageCachePssBytes).toBeGreaterThan(row.guestAnonBytes);
      expect(row.pagerPssBytes).toBeNull();
    }
    // prefetch holds private anonymous copies, and has a pager
    for (const row of prefetch) {
      expect(row.guestAnonBytes).toBeGreaterThan(row.guestPageCachePssBytes);
      expect(row.pagerPssBytes).toBeGreaterThan(0);
    }
    expect(printed.results.map((r: { mode: string; instances: number }) => `${r.mode} ${r.instances}`)).toEqual(["vanilla 2", "prefetch 2"]);
    expect(printed.summary).toHaveLength(2);
    const markdown = await readFile(join(dir, "report.md"), "utf8");
    expect(markdown).toContain("## Density: idle instances");
    expect(markdown).toMatch(/\| vanilla \| 2 \|/);
    await expectNothingLeft();
  });

  it("refuses more instances than the host can hold, and leaves nothing running", async () => {
    // A floor instance of helloworld holds well over 32 MiB (every non-zero page of its guest).
    const tooMany = Math.ceil((await procMemoryProbe.host()).availableBytes / (32 * MIB));
    const { code, stderr } = await runCli(["bench", "density", "--function", "helloworld", "--instances", String(tooMany), "--modes", "floor", "--out", join(out.path, "too-many")]);
    expect(code).toBe(1);
    expect(stderr).toMatch(new RegExp(`ERR_HOST_MEMORY.*${tooMany} floor instances of helloworld would not fit`));
    expect(stderr).toMatch(/--instances \d+ or fewer/);
    await expectNothingLeft();
  });
});
