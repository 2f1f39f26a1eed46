import { describe, expect, it } from "vitest";
import { orderModes, parseConcurrentModes, parseLevels } from "../../../src/bench/experiments.js";
import { progressLine, repsPlan } from "../../../src/cli/bench-output.js";
import { isVhiveError } from "../../../src/shared/errors.js";

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return isVhiveError(error) ? error.code : "not a VhiveError";
  }
  return undefined;
}

describe("experiment options", () => {
  it("modes run in canonical order, record before prefetch, each once", () => {
    expect(orderModes(["prefetch", "warm", "record", "prefetch", "boot"])).toEqual(["warm", "boot", "record", "prefetch"]);
  });

  it("an unknown or missing mode is a validation error", () => {
    expect(codeOf(() => orderModes(["vanilla", "turbo"]))).toBe("ERR_VALIDATION");
    expect(codeOf(() => orderModes([]))).toBe("ERR_VALIDATION");
  });

  it("concurrency levels are sorted, unique, 1 to 64", () => {
    expect(parseLevels("8,1,2,2,4")).toEqual([1, 2, 4, 8]);
    for (const bad of ["", "0", "1.5", "65", "x"]) expect(codeOf(() => parseLevels(bad)), bad).toBe("ERR_VALIDATION");
  });

  it("record cannot run concurrently (the starts would race to write one working set)", () => {
    expect(parseConcurrentModes("prefetch,vanilla")).toEqual(["vanilla", "prefetch"]);
    expect(codeOf(() => parseConcurrentModes("vanilla,record"))).toBe("ERR_VALIDATION");
  });
});

describe("--reps", () => {
  it("is a number of rounds, or auto with its minimum, its time cap and the +-5% target", () => {
    expect(repsPlan({ reps: "3", "min-reps": 5, "max-time": "20m" })).toBe(3);
    expect(repsPlan({ reps: "auto", "min-reps": 6, "max-time": "90s" })).toEqual({ minRounds: 6, maxTimeMs: 90_000, targetShare: 0.05 });
  });

  it("auto refuses a minimum below 5 rounds (an interval too narrow to stop on) and a cap that is no duration", () => {
    expect(codeOf(() => repsPlan({ reps: "auto", "min-reps": 4, "max-time": "20m" }))).toBe("ERR_VALIDATION");
    expect(codeOf(() => repsPlan({ reps: "auto", "min-reps": 5, "max-time": "soon" }))).toBe("ERR_VALIDATION");
    expect(codeOf(() => repsPlan({ reps: "0", "min-reps": 5, "max-time": "20m" }))).toBe("ERR_VALIDATION");
  });
});

describe("progress bar", () => {
  it("fills with the share done and estimates the time left", () => {
    expect(progressLine(0, 4, "starting", 0, 8)).toBe("[........] 0/4 starting");
    expect(progressLine(1, 4, "helloworld vanilla 1/2", 10_000, 8)).toBe("[##......] 1/4 helloworld vanilla 1/2, ETA 30s");
    expect(progressLine(2, 4, "x", 130_000, 8)).toBe("[####....] 2/4 x, ETA 2m10s");
    expect(progressLine(4, 4, "done", 1000, 8)).toBe("[########] 4/4 done");
  });
});
