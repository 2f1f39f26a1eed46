import { describe, expect, it } from "vitest";
import { parseDurationMs } from "../../../src/cli/duration.js";

describe("durations on the command line", () => {
  it("reads ms, s, m, h, and a bare number as seconds", () => {
    expect(["500ms", "2s", "60s", "1.5s", "5m", "1h", "3"].map((text) => parseDurationMs(text, "keepalive"))).toEqual([500, 2000, 60_000, 1500, 300_000, 3_600_000, 3000]);
  });

  it("refuses anything else naming the option", () => {
    expect(() => parseDurationMs("soon", "keepalive")).toThrow(expect.objectContaining({ code: "ERR_VALIDATION", message: expect.stringContaining("--keepalive soon") }));
  });
});
