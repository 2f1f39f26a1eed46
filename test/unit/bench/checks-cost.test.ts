import { describe, expect, it } from "vitest";
import { checksCost } from "../../../src/bench/checks-cost.js";
import type { BenchMode, ModeSummary } from "../../../src/bench/rows.js";

function summary(mode: BenchMode, medianMs: number, verifyMs: number | null = null): ModeSummary {
  return {
    function: "f",
    mode,
    concurrency: 1,
    totalMs: { median: medianMs, min: medianMs, max: medianMs, n: 5 },
    breakdown: {},
    faults: null,
    majorFaults: null,
    bytesRead: null,
    wsPages: null,
    wsBytes: null,
    wsDiskBytes: null,
    pagerBytesRead: null,
    fetchWsMs: null,
    installWsMs: null,
    verifyMs,
  };
}

describe("checksCost", () => {
  it("splits the cost by the interleaved variants when all three ran", () => {
    const cost = checksCost([summary("prefetch", 1030, 5), summary("prefetch-unseeded", 1010, 5), summary("prefetch-unchecked", 1000)], "f");
    expect(cost).toMatchObject({ measured: true, prefetchMs: 1030, uncheckedMs: 1000, reseedMs: 20, verifyMs: 10 });
    expect(cost!.share).toBeCloseTo(0.03);
  });

  it("estimates the start with neither from the pager's verify time without prefetch-unchecked", () => {
    const cost = checksCost([summary("prefetch", 1030, 8), summary("prefetch-unseeded", 1010, 10)], "f");
    expect(cost).toMatchObject({ measured: false, uncheckedMs: 1000, reseedMs: 20, verifyMs: 10 });
  });

  it("needs prefetch and a variant without checks", () => {
    expect(checksCost([summary("prefetch", 1000)], "f")).toBeUndefined();
    expect(checksCost([summary("prefetch-unchecked", 1000)], "f")).toBeUndefined();
  });
});
