import { describe, expect, it } from "vitest";
import { SHIM_PHASES, shimSplit } from "../../../src/bench/index.js";
import type { StartRecord } from "../../../src/containerd/shim/start-record.js";

const record: StartRecord = {
  start: "prefetch",
  snapshotId: "abc",
  image: "img",
  pid: 42,
  runDir: "/run/vm",
  startMs: 600,
  breakdown: {},
  notes: [],
  timeline: { shimStartedAt: 1_050, serverStartedAt: 1_200, servingAt: 1_900, createAt: 1_920, hostReadyAt: 1_980, createdAt: 2_030, startAt: 2_040, answeredAt: 2_640 },
};

describe("shimSplit", () => {
  it("splits a pod's start at the shim's timestamps, and the phases add up to the client's total", () => {
    const split = shimSplit(record, { beganAt: 500, sandboxReadyAt: 1_000, repliedAt: 2_800 });
    expect(split).toEqual({ sandboxMs: 500, toShimMs: 50, shimStartMs: 850, toCreateMs: 20, hostMs: 60, createMs: 50, toStartMs: 10, startMs: 600, replyMs: 160 });
    expect(Object.values(split).reduce((a, b) => a + b, 0)).toBe(2_800 - 500);
    expect(Object.keys(split)).toEqual(Object.keys(SHIM_PHASES));
  });

  it("puts a pod's shim, started with its sandbox, within RunPodSandbox", () => {
    const split = shimSplit(record, { beganAt: 500, sandboxReadyAt: 1_910, repliedAt: 2_800 });
    expect(split).toMatchObject({ sandboxMs: 1_410, toShimMs: 0, shimStartMs: 0, toCreateMs: 10 });
    expect(Object.values(split).reduce((a, b) => a + b, 0)).toBe(2_800 - 500);
  });

  it("has no sandbox phase for a container started without a pod (ctr run)", () => {
    const split = shimSplit(record, { beganAt: 1_000, repliedAt: 2_700 });
    expect(split.sandboxMs).toBe(0);
    expect(split.toShimMs).toBe(50);
    expect(Object.values(split).reduce((a, b) => a + b, 0)).toBe(1_700);
  });
});
