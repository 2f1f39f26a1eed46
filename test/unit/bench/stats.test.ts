import { describe, expect, it } from "vitest";
import { median, medianOfFields, summarize } from "../../../src/bench/stats.js";

describe("benchmark statistics", () => {
  it("median of odd and even counts, unaffected by input order", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
  });

  it("summarize gives n, median, min and max", () => {
    expect(summarize([5, 1, 9])).toEqual({ n: 3, median: 5, min: 1, max: 9 });
  });

  it("medianOfFields takes each field's median across rows", () => {
    expect(medianOfFields([{ a: 1, b: 10 }, { a: 3, b: 30 }, { a: 2, b: 20 }])).toEqual({ a: 2, b: 20 });
  });
});
