import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { countNonZeroPages, pageOverlap, reuseInputs } from "../../../src/bench/reuse.js";
import { readOffsets } from "../../../src/memory/index.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { indexFile, PAGE, traceFile } from "../test-shared/ws-index.js";


const pages = (...numbers: number[]) => numbers.map((n) => BigInt(n * PAGE));

let dir: TempDir;
beforeEach(async () => {
  dir = await makeTempDir("reuse-test");
});
afterEach(() => dir.remove());

describe("working-set overlap", () => {
  it("counts pages in common as shares of each set", () => {
    const overlap = pageOverlap(pages(1, 2, 3, 4), pages(3, 4, 5, 6, 7, 8, 9, 10));
    expect(overlap).toEqual({ aPages: 4, bPages: 8, commonPages: 2, shareOfA: 0.5, shareOfB: 0.25 });
  });

  it("identical sets share everything, in any order; disjoint sets nothing", () => {
    expect(pageOverlap(pages(5, 1, 9), pages(9, 5, 1))).toMatchObject({ commonPages: 3, shareOfA: 1, shareOfB: 1 });
    expect(pageOverlap(pages(1, 2), pages(3, 4))).toMatchObject({ commonPages: 0, shareOfA: 0, shareOfB: 0 });
  });

  it("a page listed twice (a trace) counts once, and an empty set shares nothing", () => {
    expect(pageOverlap(pages(1, 1, 2), pages(1))).toEqual({ aPages: 2, bPages: 1, commonPages: 1, shareOfA: 0.5, shareOfB: 1 });
    expect(pageOverlap([], pages(1))).toMatchObject({ shareOfA: 0, shareOfB: 0 });
  });

  it("works on index files as the pager writes them: 97 of 100 pages in common", async () => {
    const a = Array.from({ length: 100 }, (_, i) => i * PAGE);
    const b = [...a.slice(0, 97), ...[200, 201, 202, 203, 204].map((p) => p * PAGE)];
    await writeFile(join(dir.path, "A.index"), indexFile(a));
    await writeFile(join(dir.path, "B.trace"), traceFile(b.reverse()));
    const overlap = pageOverlap(await readOffsets(join(dir.path, "A.index")), await readOffsets(join(dir.path, "B.trace")));
    expect(overlap).toMatchObject({ aPages: 100, bPages: 102, commonPages: 97, shareOfA: 0.97 });
    expect(overlap.shareOfB).toBeCloseTo(97 / 102, 10);
  });
});

describe("touched guest memory", () => {
  it("counts the pages of a memory file that are not all zeros", async () => {
    const mem = Buffer.alloc(10 * PAGE);
    mem[0] = 1; // page 0
    mem[3 * PAGE + PAGE - 1] = 0xff; // last byte of page 3
    mem[7 * PAGE + 100] = 7; // page 7
    await writeFile(join(dir.path, "mem"), mem);
    expect(await countNonZeroPages(join(dir.path, "mem"), PAGE)).toEqual({ nonZeroPages: 3, totalPages: 10 });
  });

  it("reads past its chunk size and counts a short last page", async () => {
    const total = (8 << 20) / PAGE + 3; // more than one 8 MiB chunk
    const mem = Buffer.alloc(total * PAGE + 10);
    mem[(total - 1) * PAGE] = 1; // the last whole page, in the second chunk
    mem[total * PAGE + 5] = 1; // the 10-byte tail
    await writeFile(join(dir.path, "mem"), mem);
    expect(await countNonZeroPages(join(dir.path, "mem"), PAGE)).toEqual({ nonZeroPages: 2, totalPages: total + 1 });
  });
});

describe("which inputs to compare", () => {
  it("takes the inputs asked for, else the recipe's first two", () => {
    expect(reuseInputs({ inputs: ["A", "B", "C"], protocol: "grpc" }, ["x", "y"])).toEqual({ a: "x", b: "y", source: "option" });
    expect(reuseInputs({ inputs: ["A", "B", "C"], protocol: "grpc" })).toEqual({ a: "A", b: "B", source: "recipe" });
  });

  it("greets two names for a gRPC function that declares no inputs (helloworld)", () => {
    expect(reuseInputs({ protocol: "grpc" })).toMatchObject({ a: "world", source: "greeting" });
  });

  it("skips a function with one input, saying how to give two", () => {
    expect(reuseInputs({ inputs: ["only"], protocol: "grpc" })).toEqual({ skip: expect.stringContaining("--inputs A,B") });
    expect(reuseInputs({ protocol: "http" })).toHaveProperty("skip");
  });
});
