import { describe, expect, it } from "vitest";
import { createKeepalivePolicy, FixedKeepalive, forecastNext, HybridHistogramKeepalive, MIN_ARIMA_SAMPLES } from "../../../src/orchestrator/index.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function hybridWith(idleMs: readonly number[]): HybridHistogramKeepalive {
  const policy = new HybridHistogramKeepalive();
  for (const ms of idleMs) policy.observeIdleTime(ms);
  return policy;
}

describe("keep-alive policies", () => {
  it("fixed keeps every idle instance keepaliveMs and never pre-warms, whatever it observed", () => {
    const policy = new FixedKeepalive(600_000);
    for (const ms of [1000, 30 * MINUTE, 0]) policy.observeIdleTime(ms);
    expect(policy.decide()).toEqual({ prewarmMs: 0, keepAliveMs: 600_000, rule: "fixed" });
    expect(createKeepalivePolicy({ keepalivePolicy: "fixed", keepaliveMs: 5000 }).decide().keepAliveMs).toBe(5000);
    expect(createKeepalivePolicy({ keepalivePolicy: "hybrid", keepaliveMs: 5000 })).toBeInstanceOf(HybridHistogramKeepalive);
  });

  it("hybrid keeps instances for the histogram's whole range (4 hours), no pre-warm, until it has seen enough idle times", () => {
    expect(hybridWith([]).decide()).toEqual({ prewarmMs: 0, keepAliveMs: 4 * HOUR, rule: "standard" });
    // 9 idle times, all in one bin: representative in shape, but too few.
    expect(hybridWith(Array(9).fill(10 * MINUTE + 5000)).decide().rule).toBe("standard");
  });

  it("hybrid pre-warms at the head (5th percentile, rounded down, less 10%) and keeps until the tail (99th, rounded up, plus 10%)", () => {
    // A timer-like function: idle times of 10 minutes and a few seconds, now and then 12.
    const idle = [...Array(95).fill(10 * MINUTE + 3000), ...Array(5).fill(12 * MINUTE + 500)];
    const policy = hybridWith(idle);
    expect(policy.cv()).toBeGreaterThan(2);
    const decision = policy.decide();
    expect(decision.rule).toBe("histogram");
    expect(decision.prewarmMs).toBeCloseTo(10 * MINUTE * 0.9);
    expect(decision.keepAliveMs).toBeCloseTo(13 * MINUTE * 1.1);
    expect(policy.describe()).toMatchObject({ policy: "hybrid", idleTimes: 100, outOfBounds: 0, last: decision });
  });

  it("hybrid does not unload a function whose head falls in the first bin: no pre-warm, kept until the tail", () => {
    // Busy: most requests arrive while others run (idle time 0), a few after 2-3 minutes.
    const policy = hybridWith([...Array(90).fill(0), ...Array(10).fill(2 * MINUTE + 100)]);
    const decision = policy.decide();
    expect(decision).toMatchObject({ prewarmMs: 0, rule: "histogram" });
    expect(decision.keepAliveMs).toBeCloseTo(3 * MINUTE * 1.1);
  });

  it("hybrid falls back to the standard keep-alive when idle times spread evenly (CV below 2)", () => {
    // One idle time in each of 200 different minutes: a flat histogram.
    const policy = hybridWith(Array.from({ length: 200 }, (_, i) => i * MINUTE + 1000));
    expect(policy.cv()).toBeLessThan(2);
    expect(policy.decide()).toEqual({ prewarmMs: 0, keepAliveMs: 4 * HOUR, rule: "standard" });
  });

  it("hybrid forecasts the next idle time when most fall beyond 4 hours: pre-warm 15% before it, keep until 15% after", () => {
    const policy = hybridWith([...Array(8).fill(6 * HOUR), ...Array(4).fill(5 * MINUTE)]);
    const decision = policy.decide();
    // Fewer than MIN_ARIMA_SAMPLES idle times: the forecast is their mean.
    const mean = (8 * 6 * HOUR + 4 * 5 * MINUTE) / 12;
    expect(decision.rule).toBe("out-of-bounds (mean)");
    expect(decision.prewarmMs).toBeCloseTo(mean * 0.85);
    expect(decision.keepAliveMs).toBeCloseTo(mean * 1.15);
  });

  it("the forecast is ARIMA's from MIN_ARIMA_SAMPLES idle times on, and follows the series", () => {
    expect(forecastNext([HOUR, 2 * HOUR]).method).toBe("mean");
    // Idle times around 6 hours with noise: the forecast stays in their range.
    const series = Array.from({ length: MIN_ARIMA_SAMPLES + 5 }, (_, i) => 6 * HOUR + ((i * 7919) % 13) * MINUTE);
    const forecast = forecastNext(series);
    expect(forecast.method).toBe("arima");
    expect(forecast.valueMs).toBeGreaterThan(5 * HOUR);
    expect(forecast.valueMs).toBeLessThan(7 * HOUR);
  });
});
