/** `vhive doctor` on this host, and what it says when something is missing. */
import { describe, expect, it } from "vitest";
import { runCli } from "./harness.js";

describe("vhive doctor", () => {
  it("--json reports QEMU, the guest kernel, the accelerator, userfaultfd and ok", async () => {
    const { code, stdout } = await runCli(["doctor", "--json"]);
    const report = JSON.parse(stdout);
    expect(code).toBe(report.ok ? 0 : 1);
    expect(report.ok).toBe(true);
    expect(report.qemuVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(report.kernel.version).toMatch(/cloud-amd64$/);
    expect(report.kernel.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(["kvm", "tcg"]).toContain(report.accel);
    expect(report.accelReason).toBeTruthy();
    expect(report.userfaultfd).toBe(true);
    expect(report.tscKhz).toBeGreaterThan(100_000);
  });

  it("exits 1 and names the package when QEMU is not on PATH", async () => {
    const { code, stdout } = await runCli(["doctor", "--json"], { env: { ...process.env, PATH: "/nonexistent" } });
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.ok).toBe(false);
    const qemu = report.checks.find((check: { name: string }) => check.name === "qemu");
    expect(qemu).toMatchObject({ ok: false, detail: "qemu-system-x86_64 is not installed" });
    expect(qemu.remedy).toContain("apt-get install qemu-system-x86");
  });

  it("prints a table and a verdict for people", async () => {
    const { code, stdout } = await runCli(["doctor"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ok\s+qemu\s+QEMU emulator version/m);
    expect(stdout).toMatch(/^ok\s+accelerator\s+(kvm|tcg):/m);
    expect(stdout).toContain("this host is ready");
  });
});
