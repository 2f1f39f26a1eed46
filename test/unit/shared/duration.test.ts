import { describe, expect, it } from "vitest";
import { formatDuration } from "../../../src/shared/duration.js";

describe("formatDuration", () => {
  it("rounds to whole milliseconds below a second", () => {
    expect(formatDuration(0.4)).toBe("0 ms");
    expect(formatDuration(449.6)).toBe("450 ms");
  });

  it("gives seconds with one decimal below 10 s and whole seconds above", () => {
    expect(formatDuration(1000)).toBe("1 s");
    expect(formatDuration(2540.3)).toBe("2.5 s");
    expect(formatDuration(26954.952683)).toBe("27 s");
    expect(formatDuration(120_000)).toBe("120 s");
  });
});
