/** Snapshots of helloworld: create, restore (one after another and at once), and refusal of bad ones. */
import { open, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { ImageStore } from "../../src/image/index.js";
import { createSnapshot, restoreOnce, type Host } from "../../src/start/index.js";
import { digestFile } from "../../src/shared/digest.js";
import { StatePaths } from "../../src/shared/paths.js";
import type { StoredSnapshot } from "../../src/snapshot/index.js";
import { cloneSnapshot, expectNothingLeft, runCli, stateDir, testHost } from "./harness.js";

let host: Host;
let snapshot: StoredSnapshot;

beforeAll(async () => {
  host = await testHost();
  const image = await new ImageStore(new StatePaths(stateDir())).resolve(inject("helloworldId"));
  snapshot = await createSnapshot(host, image, { warmup: 2 });
});

describe("snapshots", () => {
  afterEach(expectNothingLeft);

  it("a snapshot records its files and fingerprint", () => {
    const { meta } = snapshot;
    expect(meta.function).toBe("helloworld");
    expect(meta.files.mem.bytes).toBe(256 * 1024 * 1024);
    expect(meta.files.state.bytes).toBeGreaterThan(10_000);
    expect(meta.fingerprint).toMatchObject({ machine: "microvm", memMib: 256, vcpus: 1, kernelDigest: host.guest.kernel.digest });
    expect(meta.warmupInvocations).toBe(2);
  });

  it("restores five times in a row with the right reply each time, never writing the snapshot", async () => {
    const memBefore = await stat(snapshot.memPath);
    for (let i = 0; i < 5; i++) {
      const result = await restoreOnce(host, snapshot, `restore-${i}`, { evict: i % 2 === 0 });
      expect(result.text).toBe(`Hello, restore-${i}!`);
      expect(result.mode).toBe("vanilla");
    }
    const memAfter = await stat(snapshot.memPath);
    expect(memAfter.mtimeMs).toBe(memBefore.mtimeMs);
    expect(await digestFile(snapshot.statePath)).toBe(snapshot.meta.files.state.digest);
  });

  it("restores four instances at once, each answering on its own port", async () => {
    const results = await Promise.all([0, 1, 2, 3].map((i) => restoreOnce(host, snapshot, `parallel-${i}`)));
    expect(results.map((result) => result.text)).toEqual([0, 1, 2, 3].map((i) => `Hello, parallel-${i}!`));
  });

  it("vhive snapshot restore --evict --json reports the breakdown, faults and bytes read", async () => {
    const { code, stdout, stderr } = await runCli(["snapshot", "restore", snapshot.meta.id, "--evict", "--json"]);
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.response).toEqual({ message: "Hello, world!" });
    const { loadVmmMs, restoreMs, resumeMs, connectMs, functionMs } = result.breakdown;
    for (const phase of [loadVmmMs, restoreMs, resumeMs, connectMs, functionMs]) expect(phase).toBeGreaterThan(0);
    expect(result.totalMs).toBeGreaterThanOrEqual(loadVmmMs + restoreMs + resumeMs + connectMs + functionMs - 1);
    // Evicted: the guest's memory had to come from disk.
    expect(result.majorFaults).toBeGreaterThan(0);
    expect(result.bytesRead).toBeGreaterThan(1024 * 1024);
  });

  it("a tampered device state file is refused, and the snapshot kept", async () => {
    const clone = await cloneSnapshot(snapshot);
    const handle = await open(clone.statePath, "r+");
    await handle.write(Buffer.from([0xff]), 0, 1, 100);
    await handle.close();
    await expect(restoreOnce(host, clone)).rejects.toMatchObject({
      code: "ERR_SNAPSHOT_CORRUPT",
      message: expect.stringMatching(/device state file .* is damaged: its digest is .*altered since it was made/),
    });
    expect((await stat(clone.dir)).isDirectory()).toBe(true);
    await runCli(["snapshot", "rm", clone.meta.id]);
  });

  it("a truncated memory file is refused naming the file and the sizes", async () => {
    const clone = await cloneSnapshot(snapshot);
    await truncate(clone.memPath, 1024 * 1024);
    await expect(restoreOnce(host, clone)).rejects.toMatchObject({
      code: "ERR_SNAPSHOT_CORRUPT",
      message: expect.stringContaining(`memory file ${clone.memPath} is damaged: it is 1048576 bytes, expected 268435456`),
    });
    await runCli(["snapshot", "rm", clone.meta.id]);
  });

  it("a snapshot made with another guest kernel is refused saying what differs", async () => {
    const otherKernel: Host = { ...host, guest: { ...host.guest, kernel: { ...host.guest.kernel, digest: "sha256:0000" } } };
    await expect(restoreOnce(otherKernel, snapshot)).rejects.toMatchObject({
      code: "ERR_SNAPSHOT_MISMATCH",
      message: expect.stringContaining(`guest kernel: made with ${host.guest.kernel.digest}, now sha256:0000`),
    });
  });

  it("a damaged meta.json is listed as damaged and can be removed", async () => {
    const clone = await cloneSnapshot(snapshot);
    await writeFile(join(clone.dir, "meta.json"), "{ broken");
    const listed = JSON.parse((await runCli(["snapshot", "ls", "--json"])).stdout);
    expect(listed.damaged.map((d: { id: string }) => d.id)).toContain(clone.meta.id);
    const restore = await runCli(["snapshot", "restore", clone.meta.id]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain("ERR_SNAPSHOT_CORRUPT");
    expect((await runCli(["snapshot", "rm", clone.meta.id])).code).toBe(0);
    await expect(readFile(join(clone.dir, "meta.json"))).rejects.toThrow();
  });
});
