import { describe, expect, it } from "vitest";
import { correlation, median, medianOfFields, summarize } from "../../../src/bench/stats.js";

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

  it("correlation: +1 and -1 for straight lines, NaN without spread or with too few pairs", () => {
    expect(correlation([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1, 12);
    expect(correlation([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    expect(correlation([1, 2, 3, 4], [1, 3, 2, 4])).toBeCloseTo(0.8, 12);
    expect(Number.isNaN(correlation([1, 2, 3], [5, 5, 5]))).toBe(true);
    expect(Number.isNaN(correlation([1, 2], [1, 2]))).toBe(true);
  });
});
