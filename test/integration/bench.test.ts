/** The boot-versus-restore benchmark runs end to end and reports consistent figures. */
import { describe, expect, it } from "vitest";
import { expectNothingLeft, runCli } from "./harness.js";

describe("vhive bench boot-vs-restore", () => {
  it("--json reports one boot and one restore with medians and the speedup", async () => {
    const { code, stdout, stderr } = await runCli(["bench", "boot-vs-restore", "helloworld", "--reps", "1", "--json"]);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.boot.runs).toHaveLength(1);
    expect(report.restore.runs).toHaveLength(1);
    expect(report.boot.runs[0].response).toEqual({ message: "Hello, world!" });
    expect(report.restore.runs[0].response).toEqual({ message: "Hello, world!" });
    expect(report.boot.totalMs.median).toBe(report.boot.runs[0].totalMs);
    expect(report.speedup).toBeCloseTo(report.boot.totalMs.median / report.restore.totalMs.median, 5);
    await expectNothingLeft();
  });
});
