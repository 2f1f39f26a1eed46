import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { benchRowsCsv, toCsv } from "../../../src/bench/csv.js";
import { buildReport, defaultOutDir, loadBundle, markdownTable, writeResults } from "../../../src/bench/report.js";
import { findSummary, summarizeRows } from "../../../src/bench/rows.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { syntheticColdStart, syntheticConcurrency, syntheticReuse, syntheticRow } from "./synthetic.js";

/** Every text node of an SVG document, which is where the axis labels and legends are. */
function svgTexts(svg: string): string[] {
  const texts: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if (key === "#text") texts.push(String(value));
        else walk(value);
      }
    }
  };
  walk(new XMLParser({ ignoreAttributes: false, preserveOrder: true }).parse(svg));
  return texts;
}

function expectValidSvg(svg: string): void {
  expect(XMLValidator.validate(svg)).toBe(true);
  expect(svg.startsWith("<svg")).toBe(true);
}

let dir: TempDir;
beforeEach(async () => {
  dir = await makeTempDir("report-test");
});
afterEach(() => dir.remove());

describe("bench rows", () => {
  it("summaries are medians per function, mode and concurrency, in first-seen order", () => {
    const summaries = summarizeRows(syntheticColdStart().rows);
    expect(summaries.map((s) => `${s.function}/${s.mode}`).slice(0, 3)).toEqual(["helloworld/warm", "helloworld/boot", "helloworld/vanilla"]);
    const vanilla = findSummary(summaries, "helloworld", "vanilla")!;
    expect(vanilla.totalMs).toEqual({ n: 3, median: 422, min: 421, max: 423 });
    expect(vanilla.breakdown.loadVmmMs).toBe(44);
    expect(vanilla.faults).toBe(2000);
    expect(findSummary(summaries, "helloworld", "boot")!.faults).toBeNull();
    expect(findSummary(summaries, "helloworld", "warm")!.breakdown).toEqual({ invokeMs: 4 });
  });

  it("CSV has one line per row, a column per phase, and quotes fields with commas", () => {
    const report = syntheticColdStart(["helloworld"], ["warm", "boot", "prefetch"], 2);
    const lines = benchRowsCsv(report.rows).trimEnd().split("\n");
    expect(lines).toHaveLength(1 + 6);
    const header = lines[0]!.split(",");
    expect(header.slice(0, 6)).toEqual(["function", "mode", "rep", "concurrency", "accel", "totalMs"]);
    expect(header).toContain("kernelBootMs");
    expect(header).toContain("memoryWaitMs");
    expect(header.at(-1)).toBe("reply");
    expect(lines[1]).toMatch(/^helloworld,warm,1,1,tcg,3,/);
    expect(lines[1]).toMatch(/,"Hello, helloworld, rep 1!"$/);
    // a boot row has no fault figures: empty fields, not zeros
    const boot = lines.find((line) => line.startsWith("helloworld,boot,1"))!;
    expect(boot).toMatch(/,,,,,,,"Hello/);
  });

  it("toCsv doubles quotes and leaves nulls empty", () => {
    expect(toCsv(["a", "b", "c"], [['say "hi"', null, 3]])).toBe('a,b,c\n"say ""hi""",,3\n');
  });
});

describe("the report", () => {
  it("puts vhive's cold starts beside the paper's figures", async () => {
    const { markdown } = await buildReport({ coldstart: syntheticColdStart() }, "test machine");
    expect(markdown).toContain("Machine: test machine");
    const beside = markdown.split("### vhive beside the paper")[1]!.split("###")[0]!;
    const helloworld = beside.split("\n").find((line) => line.startsWith("| helloworld |"))!;
    const cells = helloworld.split("|").map((cell) => cell.trim());
    const header = beside.split("\n").find((line) => line.startsWith("| function |"))!.split("|").map((cell) => cell.trim());
    const cell = (title: string) => cells[header.indexOf(title)];
    expect(cell("warm")).toBe("4.0");
    expect(cell("paper warm")).toBe("1");
    expect(cell("vanilla-4k")).toBe("902");
    expect(cell("paper vanilla")).toBe("232");
    expect(cell("prefetch (REAP)")).toBe("382");
    expect(cell("paper REAP")).toBe("60");
    // the figure as ever, then its 95% interval over the 3 rounds
    expect(cell("speedup vanilla-4k / prefetch")).toMatch(new RegExp(`^${(902 / 382).toFixed(1)}x \\(2\\.3\\d\\.\\.2\\.3\\d\\)$`));
    expect(cell("paper speedup")).toBe("3.9x");
    expect(cell("WS MiB")).toBe(((4000 * 4096) / 1048576).toFixed(1));
    expect(cell("paper WS MB")).toBe("8");
    expect(markdown).toContain("### Breakdown (median ms per phase)");
    expect(markdown).toContain("![cold-start latency by mode](coldstart-latency.svg)");
  });

  it("lists every ratio with its 95% interval and rounds, prefetch / floor included", async () => {
    const { markdown } = await buildReport({ coldstart: syntheticColdStart(["helloworld"], ["vanilla", "vanilla-4k", "prefetch", "floor"], 3) }, "m");
    const section = markdown.split("### Ratios with 95% confidence intervals")[1]!.split("###")[0]!;
    const lines = section.split("\n").filter((line) => line.startsWith("| helloworld |"));
    expect(lines.map((line) => line.split("|")[2]!.trim())).toEqual(["vanilla / prefetch", "vanilla-4k / prefetch", "prefetch / floor"]);
    // prefetch / floor: 381..383 over 351..353, medians 382 / 352
    expect(lines[2]).toMatch(new RegExp(`^\\| helloworld \\| prefetch / floor \\| ${(382 / 352).toFixed(2)}x \\| 1\\.08\\.\\.1\\.09 \\| ±0\\.\\d% \\| 3 \\|$`));
    expect(markdown).toContain("![ratios with 95% intervals](coldstart-ratios.svg)");
  });

  it("says how --reps auto chose the rounds: its settings and how each function's rounds ended", async () => {
    const report = {
      ...syntheticColdStart(["helloworld", "json_serdes"], ["vanilla", "prefetch"], 5),
      auto: {
        minRounds: 5,
        maxTimeMs: 20 * 60_000,
        targetShare: 0.05,
        outcomes: [
          { series: "helloworld", rounds: 5, stoppedBy: "precise" as const, tooWide: [] },
          { series: "json_serdes", rounds: 5, stoppedBy: "time cap" as const, tooWide: ["vanilla / prefetch ±7.2%"] },
        ],
      },
    };
    const { markdown } = await buildReport({ coldstart: report }, "m");
    expect(markdown).toContain("rounds chosen by --reps auto (at least 5, then more until every ratio's 95% interval is within ±5%, time cap 20 min)");
    expect(markdown).toContain("helloworld 5 (every ratio within ±5%); json_serdes 5 (time cap reached; still wider: vanilla / prefetch ±7.2%)");
  });

  it("leaves out columns of modes that did not run", async () => {
    const { markdown } = await buildReport({ coldstart: syntheticColdStart(["helloworld"], ["vanilla", "prefetch"], 1) }, "m");
    expect(markdown).not.toContain("| warm |");
    expect(markdown).not.toContain("paper warm");
    expect(markdown).toContain("speedup vanilla / prefetch");
    expect(markdown).not.toContain("speedup vanilla-4k / prefetch");
  });

  it("judges pooled starts against the floor's loadVmmMs and prefetch, and shows what a pooled VMM held while it waited", async () => {
    const { markdown, svgs } = await buildReport({ coldstart: syntheticColdStart(["helloworld"], ["prefetch", "floor", "pool", "pool-installed"], 3) }, "m");
    expect(markdown).toContain("### Pooled VMMs");
    const rows = markdown.split("\n").filter((line) => /^\| helloworld \| pool(-installed)? \|/.test(line));
    // medians: prefetch 382, floor 352 (loadVmmMs 44), pool 332, pool-installed 302
    expect(rows[0]).toMatch(new RegExp(`^\\| helloworld \\| pool \\| 332 \\| 20 \\| 44 \\| 45\\.5% \\| ${(332 / 382).toFixed(2)}x \\([^)]+\\) \\| ${(332 / 352).toFixed(2)}x \\([^)]+\\) \\| not met \\| 21\\.0 \\| 17\\.0 \\|$`));
    expect(rows[1]).toMatch(new RegExp(`^\\| helloworld \\| pool-installed \\| 302 \\| 50 \\| 44 \\| 113\\.6% \\| ${(302 / 382).toFixed(2)}x \\([^)]+\\) \\| ${(302 / 352).toFixed(2)}x \\([^)]+\\) \\| met \\| 38\\.0 \\| 34\\.0 \\|$`));
    const ratios = svgTexts(svgs.get("coldstart-ratios.svg")!);
    for (const label of ["pool / prefetch", "pool / floor", "pool-installed / prefetch", "pool-installed / floor"]) expect(ratios).toContain(label);
    const memory = svgTexts(svgs.get("pool-memory.svg")!);
    for (const label of ["pool", "pool-installed", "PSS", "private"]) expect(memory).toContain(label);
    expect(markdown).toContain("![a pooled VMM's memory while it waits](pool-memory.svg)");
  });

  it("says whether a mode's spread is QEMU running longer or waiting for a core", async () => {
    const { markdown } = await buildReport({ coldstart: syntheticColdStart(["helloworld"], ["prefetch", "floor"], 3) }, "m");
    expect(markdown).toContain("### Where the spread comes from");
    // totals 351..353 (floor), QEMU on a core 50 ms less each time, waiting always 12 ms: r = 1 and none
    expect(markdown).toMatch(/^\| helloworld \| floor \| 3 \| 351 \.\. 353 \| 302 \| 301 \.\. 303 \| 12 \| 12 \.\. 12 \| 1\.00 \|  \|$/m);
    const old = syntheticColdStart(["helloworld"], ["prefetch"], 3);
    for (const row of old.rows) delete row.qemuCpuMs;
    expect((await buildReport({ coldstart: old }, "m")).markdown).not.toContain("### Where the spread comes from");
  });

  it("has no pooled-VMM section or chart when no pool mode ran", async () => {
    const { markdown, svgs } = await buildReport({ coldstart: syntheticColdStart(["helloworld"], ["prefetch", "floor"], 2) }, "m");
    expect(markdown).not.toContain("### Pooled VMMs");
    expect(svgs.has("pool-memory.svg")).toBe(false);
  });

  it("renders each chart as SVG that parses and shows its series", async () => {
    const { svgs } = await buildReport({ coldstart: syntheticColdStart(), reuse: syntheticReuse(), concurrency: syntheticConcurrency() }, "m");
    expect([...svgs.keys()].sort()).toEqual(["coldstart-breakdown.svg", "coldstart-latency.svg", "coldstart-ratios.svg", "concurrency-ratios.svg", "concurrency.svg", "reuse.svg", "ws-disk.svg", "ws-size.svg"]);
    for (const svg of svgs.values()) expectValidSvg(svg);

    const latency = svgTexts(svgs.get("coldstart-latency.svg")!);
    for (const label of ["helloworld", "json_serdes", "warm", "boot", "vanilla", "vanilla-4k", "record", "prefetch", "floor", "vhive", "paper (KVM)"]) expect(latency).toContain(label);

    const breakdown = svgTexts(svgs.get("coldstart-breakdown.svg")!);
    for (const label of ["loadVmmMs", "restoreMs", "connectMs", "functionMs", "prefetch"]) expect(breakdown).toContain(label);
    expect(breakdown).not.toContain("boot"); // boots have their own phases; the chart is about restores

    const ws = svgTexts(svgs.get("ws-size.svg")!);
    for (const label of ["vhive working set", "paper working set", "vhive guest memory touched"]) expect(ws).toContain(label);

    const concurrency = svgTexts(svgs.get("concurrency.svg")!);
    for (const label of ["vanilla", "prefetch", "1", "2", "4"]) expect(concurrency).toContain(label);
    expect(concurrency.join(" ")).toContain("dashed: the paper's vanilla and REAP");
    expect(svgs.get("concurrency.svg")!.match(/stroke-dasharray/g)?.length ?? 0).toBeGreaterThan(0);

    expect(svgTexts(svgs.get("reuse.svg")!)).toContain("|A∩B| / |A|");

    const ratios = svgTexts(svgs.get("coldstart-ratios.svg")!);
    for (const label of ["helloworld", "json_serdes", "vanilla / prefetch", "vanilla-4k / prefetch", "prefetch / floor", "record / vanilla-4k"]) expect(ratios).toContain(label);
    expect(svgTexts(svgs.get("concurrency-ratios.svg")!)).toContain("vanilla / prefetch");
  });

  it("draws one bar per series value: the latency chart has a mark for every function, mode and source", async () => {
    const report = syntheticColdStart(["helloworld"], ["vanilla", "prefetch"], 1);
    const { svgs } = await buildReport({ coldstart: report }, "m");
    // vhive bars for 2 modes + the paper's REAP bar (the paper has no figure for 2 MiB vanilla)
    const bars = svgs.get("coldstart-latency.svg")!.match(/aria-roledescription="bar"/g) ?? [];
    expect(bars).toHaveLength(3);
  });

  it("shows the concurrency curve and the paper's helloworld figures", async () => {
    const { markdown } = await buildReport({ concurrency: syntheticConcurrency([1, 2]) }, "m");
    expect(markdown).toContain("## Concurrent cold starts");
    expect(markdown).toMatch(/\| 2 \| 841 \| 841 \.\. 841 \| 761 \| 761 \.\. 761 \| 405 \| 96 \|/);
  });

  it("shows reuse shares against the paper's 97%", async () => {
    const { markdown } = await buildReport({ reuse: syntheticReuse() }, "m");
    expect(markdown).toContain("| json_serdes | \"A\" / \"B\" | 5000 (19.5 MiB) | 5100 (19.9 MiB) | 4900 | 98.0% | 96.1% | 99.8% | 156.3 | 12.5% |");
    expect(markdown).toContain("Skipped: pyaes (its recipe declares one input)");
    expect(markdown).toContain("over 97%");
  });

  it("shows the prefetch variants beside prefetch, their ratios, and each working set on disk against format 2", async () => {
    const modes = ["prefetch", "prefetch-raw", "prefetch-lz4", "prefetch-zstd", "floor"] as const;
    const { markdown, svgs } = await buildReport({ coldstart: syntheticColdStart(["json_serdes"], modes, 3) }, "m");
    expect(markdown).toContain("| prefetch (REAP) | paper REAP | prefetch-raw | prefetch-lz4 | prefetch-zstd | floor |");
    for (const ratio of ["prefetch-lz4 / prefetch-raw", "prefetch-zstd / prefetch-raw", "prefetch-raw / floor"]) expect(markdown).toContain(`| json_serdes | ${ratio} |`);
    expect(markdown).toContain("### Working sets on disk");
    // 4000 pages of 4 KiB: 15.6 MiB in format 2; lz4 stores 0.40 of it here
    expect(markdown).toContain("| json_serdes | prefetch-lz4 | lz4, cached | 4000 | 15.6 | 6.3 | 0.40x |");
    expect(markdown).toContain("| json_serdes | prefetch-raw | raw, cached | 4000 | 15.6 | 14.5 | 0.93x |");
    const disk = svgTexts(svgs.get("ws-disk.svg")!);
    expect(disk).toContain("format 2 (every page raw)");
  });

  it("shows how many working sets all the pagers of a concurrent round read from disk", async () => {
    const report = { ...syntheticConcurrency([8]), modes: ["prefetch-direct", "prefetch-cached"] as const };
    report.rows = (["prefetch-direct", "prefetch-cached"] as const).flatMap((mode) => Array.from({ length: 8 }, () => syntheticRow("json_serdes", mode, 1, 8)));
    report.function = "json_serdes";
    const { markdown } = await buildReport({ concurrency: { ...report, modes: [...report.modes] } }, "m");
    expect(markdown).toContain("### Working-set reads at once");
    expect(markdown).toContain("| 8 | prefetch-direct | lz4, direct | 6.3 | 50.0 | 8.00x |");
    expect(markdown).toContain("| 8 | prefetch-cached | lz4, cached | 6.3 | 6.3 | 1.00x |");
    expect(markdown).toContain("prefetch-cached / prefetch-direct");
  });

  it("markdown tables escape pipes", () => {
    expect(markdownTable(["a"], [["x|y"]])).toBe("| a |\n| --- |\n| x\\|y |");
  });
});

describe("writing results", () => {
  it("writes JSON, CSV, report.md and the SVGs, and one report over every experiment in the directory", async () => {
    const out = join(dir.path, "results");
    const first = await writeResults(out, syntheticColdStart());
    expect((await readdir(out)).sort()).toEqual(["coldstart-breakdown.svg", "coldstart-latency.svg", "coldstart-ratios.svg", "coldstart.csv", "coldstart.json", "report.md", "ws-disk.svg", "ws-size.svg"]);
    expect(first.report).toBe(join(out, "report.md"));
    expect(JSON.parse(await readFile(join(out, "coldstart.json"), "utf8")).rows).toHaveLength(2 * 7 * 3);

    await writeResults(out, syntheticConcurrency());
    await writeResults(out, syntheticReuse());
    const report = await readFile(join(out, "report.md"), "utf8");
    expect(report).toContain("## Cold starts");
    expect(report).toContain("## Concurrent cold starts");
    expect(report).toContain("## Working-set reuse across inputs");
    expect(await readFile(join(out, "reuse.csv"), "utf8")).toMatch(/^function,inputA,inputB,.*\njson_serdes,A,B,4096,5000,5100,5010,4900,0\.98,/);
    expect(Object.keys(await loadBundle(out)).sort()).toEqual(["coldstart", "concurrency", "reuse"]);
  });

  it("the default output directory is timestamped under the state's results/", () => {
    expect(defaultOutDir("/state", "coldstart", new Date("2026-11-26T23:04:05.678Z"))).toBe("/state/results/2026-11-26T23-04-05Z-coldstart");
  });
});
