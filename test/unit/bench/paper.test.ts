import { describe, expect, it } from "vitest";
import { paperLatencyMs } from "../../../src/bench/paper.js";
import { PAPER_CONCURRENCY, PAPER_FACTS, PAPER_FUNCTIONS, paperFunction } from "../../../src/bench/paper.js";

describe("the paper's figures", () => {
  it("has the ten functions of vHive's suite, each with a directory in functions/", async () => {
    const { readdir } = await import("node:fs/promises");
    const suite = await readdir("functions");
    expect(Object.keys(PAPER_FUNCTIONS)).toHaveLength(10);
    for (const name of Object.keys(PAPER_FUNCTIONS)) expect(suite).toContain(name);
  });

  it("each speedup is vanilla over REAP as the paper rounds it", () => {
    for (const [name, f] of Object.entries(PAPER_FUNCTIONS)) {
      expect(Math.abs(f.vanillaMs / f.reapMs - f.speedup), name).toBeLessThan(0.06);
      expect(f.warmMs, name).toBeLessThan(f.reapMs);
      expect(f.reapMs, name).toBeLessThan(f.vanillaMs);
    }
  });

  it("working sets span 8 to 99 MB", () => {
    const ws = Object.values(PAPER_FUNCTIONS).map((f) => f.wsMb);
    expect(Math.min(...ws)).toBe(8);
    expect(Math.max(...ws)).toBe(99);
  });

  it("the concurrency curve starts at the single cold start and REAP stays ahead at every level", () => {
    expect(PAPER_CONCURRENCY[0]).toEqual({ level: 1, vanillaMs: PAPER_FUNCTIONS.helloworld.vanillaMs, reapMs: PAPER_FUNCTIONS.helloworld.reapMs });
    for (let i = 1; i < PAPER_CONCURRENCY.length; i++) {
      const [before, now] = [PAPER_CONCURRENCY[i - 1]!, PAPER_CONCURRENCY[i]!];
      expect(now.level).toBe(before.level * 2);
      expect(now.vanillaMs).toBeGreaterThan(before.vanillaMs);
      expect(now.reapMs).toBeGreaterThan(before.reapMs);
      expect(now.reapMs).toBeLessThan(now.vanillaMs);
    }
  });

  it("maps the paper's vanilla to vanilla-4k and REAP to prefetch; other modes have no paper figure", () => {
    expect(paperLatencyMs("helloworld", "vanilla-4k")).toBe(232);
    expect(paperLatencyMs("helloworld", "prefetch")).toBe(60);
    expect(paperLatencyMs("helloworld", "warm")).toBe(1);
    expect(paperLatencyMs("helloworld", "vanilla")).toBeUndefined();
    expect(paperLatencyMs("mystery", "prefetch")).toBeUndefined();
    expect(paperFunction("toString")).toBeUndefined();
  });

  it("states the headline shares as fractions", () => {
    expect(PAPER_FACTS.reuseShareMost).toBe(0.97);
    expect(PAPER_FACTS.wsShareMin).toBeLessThan(PAPER_FACTS.wsShareAverage);
    expect(PAPER_FACTS.wsShareAverage).toBeLessThan(PAPER_FACTS.wsShareMax);
  });
});
