/**
 * REAP: every memory mode restores the same guest, the working set is recorded and prefetched,
 * and a dead pager ends its VM instead of hanging it.
 */
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildImage, type StoredImage } from "../../src/image/index.js";
import { loadWorkingSet, pickEncoding, removeWorkingSet, workingSetPaths } from "../../src/memory/index.js";
import { bootInstance, createSnapshot, restoreInstance, restoreOnce, type Host, type RestoreResult } from "../../src/start/index.js";
import { StatePaths } from "../../src/shared/paths.js";
import type { StoredSnapshot } from "../../src/snapshot/index.js";
import { expectNothingLeft, runCli, stateDir, testHost } from "./harness.js";

let host: Host;
let image: StoredImage;
let snapshot: StoredSnapshot;
let bootedDigest: string;

beforeAll(async () => {
  host = await testHost();
  image = await buildImage(new StatePaths(stateDir()), "test/fixtures/guest-probe");
  snapshot = await createSnapshot(host, image);
  await using booted = await bootInstance(host, image);
  bootedDigest = (await booted.invoke("digest")).text;
});

describe("REAP memory modes", () => {
  afterEach(expectNothingLeft);

  it("the guest cannot tell the modes apart: same reply and same digest of its memory in each", async () => {
    expect(bootedDigest).toMatch(/^digest [0-9a-f]{64}$/);
    await removeWorkingSet(snapshot);
    const results: Record<string, RestoreResult> = {};
    for (const mode of ["vanilla", "vanilla-4k", "lazy", "record", "prefetch", "floor"] as const) {
      results[mode] = await restoreOnce(host, snapshot, "digest", { mode, evict: true });
      expect(results[mode]!.text, mode).toBe(bootedDigest);
      expect(results[mode]!.mode).toBe(mode);
    }
    // The pager served the userfaultfd modes; prefetch found most pages already installed.
    expect(results.lazy!.faults).toBeGreaterThan(1000);
    expect(results.record!.wsPages).toBeGreaterThan(1000);
    expect(results.prefetch!.wsPages).toBe(results.record!.wsPages);
    expect(results.prefetch!.faults).toBeLessThan(results.lazy!.faults / 10);
    expect(results.floor!.wsPages).toBeGreaterThan(results.prefetch!.wsPages);
    // vanilla-4k reads one page per fault: many more faults than vanilla's huge-page reads.
    expect(results["vanilla-4k"]!.faults).toBeGreaterThan(results.vanilla!.faults * 4);
  });

  it("reap records on the first cold start and prefetches on later ones", async () => {
    await removeWorkingSet(snapshot);
    const first = await restoreOnce(host, snapshot, "digest", { mode: "reap" });
    expect(first.mode).toBe("record");
    expect(first.text).toBe(bootedDigest);
    const ws = await loadWorkingSet(snapshot);
    expect(ws?.meta).toMatchObject({ snapshotId: snapshot.meta.id, pages: first.wsPages, input: "digest" });
    const second = await restoreOnce(host, snapshot, "another input", { mode: "reap" });
    expect(second.mode).toBe("prefetch");
    expect(second.text).toBe("Hello, another input!");
  });

  it("vhive snapshot restore --json reports the working set, its fetch and install times and the faults", async () => {
    const { code, stdout, stderr } = await runCli(["snapshot", "restore", snapshot.meta.id, "--mode", "prefetch", "--evict", "--json", "--data", "digest"]);
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.text).toBe(bootedDigest);
    expect(result.wsPages).toBeGreaterThan(1000);
    expect(result.wsBytes).toBe(result.wsPages * 4096);
    expect(result.wsDiskBytes).toBeGreaterThan(0);
    expect(result.wsDiskBytes).toBeLessThan(result.wsBytes);
    expect(result).toMatchObject({ wsCodec: "lz4", wsRead: "cached" });
    expect(result.fetchWsMs).toBeGreaterThan(0);
    expect(result.installWsMs).toBeGreaterThan(0);
    expect(result.pager).toMatchObject({ mode: "prefetch", prefetchDone: true });
    expect(typeof result.faults).toBe("number");
  });

  it("prefetch reads every encoding of the working set, with O_DIRECT or through the page cache, and the guest cannot tell", async () => {
    await removeWorkingSet(snapshot);
    await restoreOnce(host, snapshot, "digest", { mode: "record" });
    const recorded = (await loadWorkingSet(snapshot))!;
    expect(recorded.encodings.map((e) => e.codec)).toEqual(["lz4"]);
    expect(recorded.meta.zeroPages).toBeGreaterThan(0);
    const results: Record<string, RestoreResult> = {};
    for (const [codec, read] of [["raw", "direct"], ["lz4", "cached"], ["zstd", "direct"], ["lz4", "direct"]] as const) {
      const result = await restoreOnce(host, snapshot, "digest", { mode: "prefetch", wsCodec: codec, wsRead: read, evict: true });
      expect(result.text, `${codec} ${read}`).toBe(bootedDigest);
      expect(result).toMatchObject({ wsCodec: codec, wsRead: read, wsPages: recorded.meta.pages });
      expect(result.pager).toMatchObject({ wsZeroPages: recorded.meta.zeroPages, prefetchZeroPages: recorded.meta.zeroPages, directIo: read === "direct" });
      results[`${codec} ${read}`] = result;
    }
    // Zero pages are not stored; the compressed encodings store less than that.
    const raw = results["raw direct"]!;
    expect(raw.wsDiskBytes).toBe((recorded.meta.pages - recorded.meta.zeroPages) * 4096);
    expect(results["lz4 direct"]!.wsDiskBytes).toBeLessThan(raw.wsDiskBytes * 0.9);
    expect(results["zstd direct"]!.wsDiskBytes).toBeLessThan(raw.wsDiskBytes * 0.9);
    // The encodings packed for this test are stored beside the recorded one.
    expect((await loadWorkingSet(snapshot))!.encodings.map((e) => e.codec)).toEqual(["raw", "lz4", "zstd"]);
  });

  it("a working set of format 2 counts as absent: reap records a new one of format 3", async () => {
    await removeWorkingSet(snapshot);
    const paths = workingSetPaths(snapshot);
    await writeFile(join(snapshot.dir, "ws.pages"), Buffer.alloc(4096));
    await writeFile(paths.metaPath, JSON.stringify({ format: 2, snapshotId: snapshot.meta.id, pages: 1, bytes: 4096, pageSize: 4096, recordedAt: "2026-01-01T00:00:00.000Z", input: "digest" }));
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
    const first = await restoreOnce(host, snapshot, "digest", { mode: "reap" });
    expect(first.mode).toBe("record");
    expect((await loadWorkingSet(snapshot))?.meta.format).toBe(3);
    await rm(join(snapshot.dir, "ws.pages"));
  });

  it("a damaged block of a compressed working set ends the restore naming the file, before the guest runs", async () => {
    await removeWorkingSet(snapshot);
    await restoreOnce(host, snapshot, "digest", { mode: "record" });
    const { pagesPath } = pickEncoding((await loadWorkingSet(snapshot))!)!;
    const saved = await readFile(pagesPath);
    const damaged = Buffer.from(saved);
    damaged[1000] = damaged[1000]! ^ 0x5a;
    await writeFile(pagesPath, damaged);
    try {
      await expect(restoreOnce(host, snapshot, "digest", { mode: "prefetch" })).rejects.toMatchObject({
        code: "ERR_SNAPSHOT_CORRUPT",
        message: expect.stringContaining(pagesPath),
      });
    } finally {
      await writeFile(pagesPath, saved);
    }
  });

  it("a pager killed while its VM runs ends the VM with ERR_PAGER, leaving nothing behind", async () => {
    const instance = await restoreInstance(host, snapshot, { mode: "lazy" });
    try {
      process.kill(instance.pager!.pid!, "SIGKILL");
      // The digest touches 24 MiB the guest has not faulted in yet: without a pager it would hang.
      await expect(instance.invoke("digest", { timeoutMs: 60_000 })).rejects.toMatchObject({ code: "ERR_PAGER", message: expect.stringContaining("SIGKILL") });
    } finally {
      await instance.stop();
    }
  });

  it("prefetch without a working set is refused, saying how to record one", async () => {
    await removeWorkingSet(snapshot);
    await expect(restoreOnce(host, snapshot, "x", { mode: "prefetch" })).rejects.toMatchObject({
      code: "ERR_VALIDATION",
      remedy: expect.stringContaining("--mode record"),
    });
  });

  it("vhive snapshot rm removes the working set with its snapshot", async () => {
    await restoreOnce(host, snapshot, "digest", { mode: "record" });
    const ws = await loadWorkingSet(snapshot);
    expect(ws).toBeDefined();
    expect((await runCli(["snapshot", "rm", snapshot.meta.id])).code).toBe(0);
    await expect(stat(ws!.encodings[0]!.pagesPath)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await loadWorkingSet(snapshot)).toBeUndefined();
  });
});
