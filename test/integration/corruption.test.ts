/**
 * No damaged snapshot or working set is ever loaded silently. With real snapshots, bytes are
 * flipped in ws.pages and in mem: the CLI's restore refuses them naming the file and the offset
 * (the pager checks every page it reads; the vanilla modes check a memory file written since it
 * last matched), `vhive snapshot verify` finds them, and the daemon recovers without losing what
 * is still good: a damaged working set is moved aside and recorded again, a damaged memory file
 * quarantines its snapshot and the function boots a new one, and every request is served,
 * including requests that arrive while the damaged file is in use.
 */
import { open, readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startDaemon } from "../../src/daemon/index.js";
import { buildImage, type StoredImage } from "../../src/image/index.js";
import { loadWorkingSet, pickEncoding, readOffsets, workingSetPaths } from "../../src/memory/index.js";
import { digestFile } from "../../src/shared/digest.js";
import { NoOpLog } from "../../src/shared/log.js";
import { StatePaths } from "../../src/shared/paths.js";
import { SnapshotStore, type StoredSnapshot } from "../../src/snapshot/index.js";
import { bootInstance, createSnapshot, restoreOnce, type Host } from "../../src/start/index.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { api, removeSnapshotsOf, uniqueName, waitScaledToZero } from "./daemon-harness.js";
import { cloneSnapshot, expectNothingLeft, flipBytes, runCli, stateDir, testHost } from "./harness.js";

const PAGE = 4096;
const cleanups = new Cleanups();
const store = () => new SnapshotStore(new StatePaths(stateDir()));
let host: Host;
let image: StoredImage;
let snapshot: StoredSnapshot;
let bootedDigest: string;

beforeAll(async () => {
  host = await testHost();
  image = await buildImage(new StatePaths(stateDir()), "test/fixtures/guest-probe");
  snapshot = await createSnapshot(host, image);
  await restoreOnce(host, snapshot, "digest", { mode: "record" });
  await using booted = await bootInstance(host, image);
  bootedDigest = (await booted.invoke("digest")).text;
});
afterAll(() => store().remove(snapshot.meta.id));
afterEach(async () => {
  await cleanups.run();
  await expectNothingLeft();
});

/** A copy of the snapshot (with its working set) that a test may damage; removed after it. */
async function damageable(): Promise<StoredSnapshot> {
  const clone = await cloneSnapshot(snapshot);
  cleanups.push(() => store().remove(clone.meta.id));
  return clone;
}

/** The working set's stored encoding a prefetch reads by default. */
async function prefetched(of: StoredSnapshot): Promise<{ pagesPath: string; indexPath: string }> {
  return pickEncoding((await loadWorkingSet(of))!)!;
}

/** Page offsets the function surely reads: its working set's. */
async function workingSetOffsets(of: StoredSnapshot): Promise<number[]> {
  return (await readOffsets((await prefetched(of)).indexPath)).map(Number);
}

describe("a damaged working set", () => {
  it("is refused by the prefetch, naming ws.pages and the offset, and found by vhive snapshot verify", async () => {
    const clone = await damageable();
    const { pagesPath: pages } = await prefetched(clone);
    const { size } = await stat(pages);
    await flipBytes(pages, Math.floor(size / 2), 8);
    const restore = await runCli(["snapshot", "restore", clone.meta.id, "--mode", "prefetch", "--data", "digest"]);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain("ERR_SNAPSHOT_CORRUPT");
    expect(restore.stderr).toMatch(new RegExp(`${pages} is damaged at offset \\d+ \\(0x[0-9a-f]+\\)`));
    expect(restore.stderr).toContain("--mode record");
    const verify = await runCli(["snapshot", "verify", clone.meta.id, "--json"]);
    expect(verify.code).toBe(1);
    const verdict = JSON.parse(verify.stdout);
    expect(verdict.ok).toBe(false);
    expect(verdict.files.find((file: { role: string; file: string }) => file.role === "working-set pages" && file.file === pages)).toMatchObject({ ok: false });
    expect(verdict.files.find((file: { role: string }) => file.role === "memory")).toMatchObject({ ok: true });
    // The memory file is whole: a restore that does not use the working set still works.
    expect((await restoreOnce(host, clone, "digest", { mode: "lazy" })).text).toBe(bootedDigest);
  });
});

describe("a damaged memory file", () => {
  it("is refused in every mode that reads it, naming mem and the offset; vhive snapshot verify finds it", async () => {
    const clone = await damageable();
    const offset = (await workingSetOffsets(clone))[100]!;
    await flipBytes(clone.memPath, offset + 7);
    for (const mode of ["lazy", "record", "floor"] as const) {
      await expect(restoreOnce(host, clone, "digest", { mode }), mode).rejects.toMatchObject({
        code: "ERR_SNAPSHOT_CORRUPT",
        part: "memory",
        message: expect.stringContaining(`${clone.memPath} is damaged at offset ${offset}`),
      });
    }
    // QEMU reads the file itself in the vanilla modes: it was written since it last matched its
    // checksums (its ctime moved), so it is checked whole first.
    for (const mode of ["vanilla", "vanilla-4k"] as const) {
      await expect(restoreOnce(host, clone, "digest", { mode }), mode).rejects.toMatchObject({
        code: "ERR_SNAPSHOT_CORRUPT",
        message: expect.stringMatching(new RegExp(`${clone.memPath} is damaged at offset ${offset}.*1 of its 65536 pages do not match`)),
      });
    }
    const verify = await runCli(["snapshot", "verify", clone.meta.id]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(new RegExp(`${clone.memPath}\\s+memory\\s+DAMAGED: 1 of 65536 pages, the first at offset ${offset}`));
    expect(verify.stdout).toContain(`snapshot ${clone.meta.id} is damaged`);
  });

  it("an undamaged copy verifies whole, and the vanilla modes then map it without checking it again", async () => {
    const clone = await damageable();
    const verify = await runCli(["snapshot", "verify", clone.meta.id]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`snapshot ${clone.meta.id} is whole`);
    expect((await restoreOnce(host, clone, "digest", { mode: "vanilla" })).text).toBe(bootedDigest);
  });
});

describe("a snapshot whose files pass their checks but still crash QEMU", () => {
  it("fails with what QEMU said, naming the snapshot as the likely cause", async () => {
    const clone = await damageable();
    // A device state cut short, with its size and digest in meta.json updated to match: only
    // QEMU can tell, when it loads it.
    const half = Math.floor(clone.meta.files.state.bytes / 2);
    await truncate(clone.statePath, half);
    const state = { bytes: half, digest: await digestFile(clone.statePath) };
    const meta = { ...clone.meta, files: { ...clone.meta.files, state } };
    await writeFile(join(clone.dir, "meta.json"), JSON.stringify(meta));
    const error = await restoreOnce(host, { ...clone, meta }, "digest", { mode: "vanilla" }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      message: expect.stringContaining(`it ran from snapshot ${clone.meta.id}, restored in mode vanilla: the snapshot's files are the likely cause`),
      remedy: expect.stringContaining(`vhive snapshot verify ${clone.meta.id}`),
    });
    expect((error as { details?: string }).details).toMatch(/qemu-system-x86_64/);
  });
});

describe("the daemon", () => {
  it("moves a damaged working set aside and records it again, serving the request that found it", async () => {
    const fn = uniqueName("damaged-ws");
    cleanups.push(() => removeSnapshotsOf(fn));
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    expect((await api(daemon.url, "PUT", `/functions/${fn}`, { image: image.id, start: "reap", keepaliveMs: 1500 })).status).toBe(201);
    const invoke = async () => {
      const { status, json } = await api(daemon.url, "POST", `/functions/${fn}/invoke`, { data: "digest" });
      expect(status, JSON.stringify(json)).toBe(200);
      expect(json.text).toBe(bootedDigest);
      return json;
    };
    expect((await invoke()).start).toBe("boot");
    await waitScaledToZero(daemon.url, fn);
    expect((await invoke()).start).toBe("record");
    await waitScaledToZero(daemon.url, fn);
    const [saved] = (await store().list()).snapshots.filter((s) => s.meta.function === fn);
    const { pagesPath: pages } = await prefetched(saved!);
    await flipBytes(pages, 1000, 4096 * 3);

    const recovered = await invoke();
    expect(recovered.start).toBe("record");
    expect(recovered.notes).toEqual([expect.stringMatching(new RegExp(`${pages} is damaged at offset \\d+.*moved aside to .*damaged/ws-.*recorded again`))]);
    const aside = await readdir(join(saved!.dir, "damaged"));
    expect(aside).toHaveLength(1);
    expect(JSON.parse(await readFile(join(saved!.dir, "damaged", aside[0]!, "why.json"), "utf8")).reason).toMatch(/ws-\w+\.pages is damaged/);
    await waitScaledToZero(daemon.url, fn);
    expect((await invoke()).start).toBe("prefetch");

    const logs = await runCli(["logs", fn], { env: { ...process.env, VHIVE_URL: daemon.url } });
    expect(logs.stdout).toMatch(/#\d+: snapshot \S+: its working set's file .*ws-\w+\.pages is damaged/);
  });

  it("quarantines a snapshot whose memory file is damaged and boots a new one; requests at once and mid-request are served", async () => {
    const fn = uniqueName("damaged-mem");
    cleanups.push(() => removeSnapshotsOf(fn));
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    // Keep-alive long enough that the recording instance is still there when its file is damaged.
    expect((await api(daemon.url, "PUT", `/functions/${fn}`, { image: image.id, start: "reap", keepaliveMs: 4000, maxInstances: 2 })).status).toBe(201);
    const invoke = async (data: string) => {
      const { status, json } = await api(daemon.url, "POST", `/functions/${fn}/invoke`, { data });
      expect(status, JSON.stringify(json)).toBe(200);
      return json;
    };
    expect((await invoke("hello")).start).toBe("boot");
    await waitScaledToZero(daemon.url, fn);
    const [saved] = (await store().list()).snapshots.filter((s) => s.meta.function === fn);

    // An instance restored (recording) and idle after "hello"; then a stray write damages every
    // 8th page of mem, and "digest" touches 24 MiB the instance has not faulted in yet. Its
    // pager finds a damaged page (on the request's faults, or on the idle guest's own first),
    // the instance ends, the snapshot is quarantined, and the request is served by a new one.
    expect((await invoke("hello")).start).toBe("record");
    await waitFor(() => stat(workingSetPaths(saved!).metaPath).then(() => true, () => false));
    await damageEveryNthPage(saved!.memPath, 8);
    const served = await invoke("digest");
    expect(served.text).toBe(bootedDigest);
    expect(served.start).toBe("boot");
    expect(served.notes?.join(" ")).toMatch(new RegExp(`snapshot ${saved!.meta.id}: its memory file .* is damaged at offset`));
    const { damaged } = await store().list();
    expect(damaged.find((d) => d.id === saved!.meta.id)?.problem).toMatch(/^quarantined: snapshot .* its memory file .* is damaged/);
    await expect(stat(saved!.memPath)).resolves.toBeDefined(); // kept for inspection

    // Requests at once, while the function has no usable snapshot and one is being made: all served.
    await waitScaledToZero(daemon.url, fn);
    const together = await Promise.all([invoke("digest"), invoke("digest")]);
    expect(together.map((reply) => reply.text)).toEqual([bootedDigest, bootedDigest]);
    const logs = await runCli(["logs", fn, "--json"], { env: { ...process.env, VHIVE_URL: daemon.url } });
    const records = JSON.parse(logs.stdout) as { note: string | null; status: string }[];
    expect(records.every((record) => record.status === "ok")).toBe(true);
    expect(records.some((record) => /quarantined|died serving this request/.test(record.note ?? ""))).toBe(true);
  });

  it("a vanilla function whose memory file was written to checks it, quarantines it, and serves requests that arrive at once", async () => {
    const fn = uniqueName("damaged-vanilla");
    cleanups.push(() => removeSnapshotsOf(fn));
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    expect((await api(daemon.url, "PUT", `/functions/${fn}`, { image: image.id, start: "vanilla", keepaliveMs: 1500, maxInstances: 2 })).status).toBe(201);
    const invoke = async () => {
      const { status, json } = await api(daemon.url, "POST", `/functions/${fn}/invoke`, { data: "digest" });
      expect(status, JSON.stringify(json)).toBe(200);
      expect(json.text).toBe(bootedDigest);
      return json;
    };
    expect((await invoke()).start).toBe("boot");
    await waitScaledToZero(daemon.url, fn);
    const [saved] = (await store().list()).snapshots.filter((s) => s.meta.function === fn);
    await flipBytes(saved!.memPath, 1000 * PAGE, 16);
    const replies = await Promise.all([invoke(), invoke()]);
    expect(replies.map((reply) => reply.start)).toEqual(["boot", "boot"]);
    expect(replies.flatMap((reply) => reply.notes ?? []).join(" ")).toMatch(/is damaged at offset 4096000 .*quarantined/);
    expect((await store().list()).damaged.map((d) => d.id)).toContain(saved!.meta.id);
  });
});

/** Flip one byte in every nth page of a file, in one pass. */
async function damageEveryNthPage(path: string, nth: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    for (let offset = 64; offset < size; offset += nth * PAGE) {
      await handle.read(byte, 0, 1, offset);
      byte[0] = byte[0]! ^ 0xff;
      await handle.write(byte, 0, 1, offset);
    }
  } finally {
    await handle.close();
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
