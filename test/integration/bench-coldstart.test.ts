/** `vhive bench coldstart` end to end: a tiny run writes every result file, and they agree. */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { XMLValidator } from "fast-xml-parser";
import { afterAll, describe, expect, it } from "vitest";
import { makeTempDir } from "../../src/shared/tmp.js";
import { expectNothingLeft, runCli } from "./harness.js";

const out = await makeTempDir("bench-coldstart-test");
afterAll(() => out.remove());

describe("vhive bench coldstart", () => {
  it("one function, two modes, one rep: writes the CSV, JSON, report.md and SVG charts", async () => {
    const dir = join(out.path, "results");
    const { code, stdout, stderr } = await runCli(["bench", "coldstart", "--functions", "helloworld", "--modes", "vanilla,prefetch", "--reps", "1", "--out", dir, "--json"]);
    expect(code, stderr).toBe(0);
    const printed = JSON.parse(stdout);
    expect(printed.outDir).toBe(dir);
    expect((await readdir(dir)).sort()).toEqual(["coldstart-breakdown.svg", "coldstart-latency.svg", "coldstart-ratios.svg", "coldstart.csv", "coldstart.json", "report.md", "ws-disk.svg", "ws-size.svg"]);
    // one round: the ratio is printed, without an interval (that needs two rounds)
    expect(printed.ratios).toEqual([{ group: "helloworld", figures: [expect.objectContaining({ label: "vanilla / prefetch", rounds: 1, low: null, high: null })] }]);

    const report = JSON.parse(await readFile(join(dir, "coldstart.json"), "utf8"));
    expect(report.rows.map((row: { mode: string }) => row.mode)).toEqual(["vanilla", "prefetch"]);
    for (const row of report.rows) {
      expect(row.reply).toContain("Hello, world!");
      expect(row.totalMs).toBeGreaterThan(0);
      expect(row.breakdown.loadVmmMs).toBeGreaterThan(0);
    }
    const prefetch = report.rows[1];
    expect(prefetch.wsPages).toBeGreaterThan(0);
    expect(prefetch.fetchWsMs).toBeGreaterThan(0);
    // Format 3 on disk: zero pages left out, lz4 blocks, read through the page cache by default.
    expect(prefetch).toMatchObject({ wsCodec: "lz4", wsRead: "cached" });
    expect(prefetch.wsDiskBytes).toBeGreaterThan(0);
    expect(prefetch.wsDiskBytes).toBeLessThan(prefetch.wsBytes * 0.6);

    const csv = (await readFile(join(dir, "coldstart.csv"), "utf8")).trimEnd().split("\n");
    expect(csv).toHaveLength(3);
    expect(csv[2]).toMatch(new RegExp(`^helloworld,prefetch,1,1,\\w+,${prefetch.totalMs},`));

    const markdown = await readFile(join(dir, "report.md"), "utf8");
    expect(markdown).toContain("### vhive beside the paper");
    expect(markdown).toMatch(/\| helloworld \| .*\| 232 \| .*\| 60 \|/); // the paper's vanilla and REAP beside ours
    expect(markdown).toMatch(/### Working sets on disk[\s\S]*\| helloworld \| prefetch \| lz4, cached \| \d+ \|/);
    for (const svg of ["coldstart-latency.svg", "coldstart-breakdown.svg", "ws-size.svg", "ws-disk.svg", "coldstart-ratios.svg"]) {
      const text = await readFile(join(dir, svg), "utf8");
      expect(XMLValidator.validate(text), svg).toBe(true);
      expect(text, svg).toContain("helloworld");
    }
    await expectNothingLeft();
  });

  it("pooled modes beside prefetch and the floor: rows with the idle memory, the pooled section and its chart", async () => {
    const dir = join(out.path, "pooled");
    const { code, stdout, stderr } = await runCli(["bench", "coldstart", "--functions", "helloworld", "--modes", "prefetch,floor,pool,pool-installed", "--reps", "1", "--out", dir, "--json"]);
    expect(code, stderr).toBe(0);
    const printed = JSON.parse(stdout);
    expect(printed.ratios[0].figures.map((f: { label: string }) => f.label)).toEqual(["prefetch / floor", "pool / prefetch", "pool / floor", "pool-installed / prefetch", "pool-installed / floor"]);
    const report = JSON.parse(await readFile(join(dir, "coldstart.json"), "utf8"));
    expect(report.rows.map((row: { mode: string }) => row.mode)).toEqual(["prefetch", "floor", "pool", "pool-installed"]);
    for (const row of report.rows) expect(row.reply).toContain("Hello, world!");
    for (const row of report.rows.slice(2)) {
      expect(row.breakdown.loadVmmMs).toBe(0);
      expect(row).toMatchObject({ wsCodec: "lz4", wsRead: "cached" }); // read as plain prefetch reads it
      expect(row.poolIdlePssBytes).toBeGreaterThan(1 << 20);
      expect(row.poolIdlePrivateBytes).toBeGreaterThan(0);
    }
    expect(report.rows[0].poolIdlePssBytes).toBeNull();
    const markdown = await readFile(join(dir, "report.md"), "utf8");
    expect(markdown).toContain("### Pooled VMMs");
    expect(markdown).toMatch(/^\| helloworld \| pool-installed \| \d+ \|/m);
    const chart = await readFile(join(dir, "pool-memory.svg"), "utf8");
    expect(XMLValidator.validate(chart)).toBe(true);
    expect(chart).toContain("pool-installed");
    await expectNothingLeft();
  });
});
