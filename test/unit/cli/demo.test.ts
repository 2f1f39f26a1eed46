import { describe, expect, it } from "vitest";
import { DEMO_MODES, describeSpeedups } from "../../../src/cli/commands/demo.js";
import { syntheticColdStart } from "../bench/synthetic.js";

describe("vhive demo", () => {
  it("runs both baselines, QEMU's default and the paper's, beside REAP", () => {
    expect(DEMO_MODES).toEqual(["warm", "boot", "vanilla", "vanilla-4k", "record", "prefetch"]);
  });

  it("prints prefetch's speedup over vanilla-4k beside the paper's, and over vanilla", () => {
    const [line, other] = describeSpeedups(syntheticColdStart(["helloworld", "json_serdes"], DEMO_MODES, 1));
    // Synthetic medians: vanilla-4k 901 ms, vanilla 421 ms, prefetch 381 ms.
    expect(line).toBe("helloworld: prefetch (REAP) is 2.36x faster than vanilla-4k, the paper's baseline (the paper: 3.9x under KVM), and 1.10x faster than vanilla, QEMU's default (2 MiB per fault)");
    expect(other).toMatch(/^json_serdes: prefetch \(REAP\) is [\d.]+x faster than vanilla-4k, the paper's baseline \(the paper: 4\.2x under KVM\)/);
  });

  it("prints no speedup for a function without the three modes", () => {
    expect(describeSpeedups(syntheticColdStart(["helloworld"], ["warm", "boot", "prefetch"], 1))).toEqual([]);
  });
});
