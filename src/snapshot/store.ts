/**
 * The snapshot store on disk:
 *
 *   snapshots/<function>/<id>/meta.json   fingerprint and file sizes/digests (written last)
 *   snapshots/<function>/<id>/state       QEMU device state (migration stream, ~60 KB)
 *   snapshots/<function>/<id>/mem         guest memory, one file the size of guest RAM
 *   snapshots/<function>/<id>/mem.sums    a checksum of every page of mem (checksums.ts)
 *   snapshots/<function>/<id>/quarantine.json  present once the snapshot was found damaged:
 *                                         why and when; it is listed as damaged, never restored
 *
 * A snapshot being written lives in <id>.partial and is renamed when complete, so a crash
 * mid-create never leaves something that looks restorable. Snapshot files are never written
 * after creation: restores map them privately.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { digestFile } from "../shared/digest.js";
import { VhiveError } from "../shared/errors.js";
import type { StatePaths } from "../shared/paths.js";
import { damagedFile } from "./damage.js";
import { SNAPSHOT_FORMAT, SnapshotMetaSchema, type SnapshotMeta } from "./meta.js";

export interface StoredSnapshot {
  meta: SnapshotMeta;
  dir: string;
  statePath: string;
  memPath: string;
  sumsPath: string;
}

/** A snapshot directory whose meta.json cannot be read; listed so users can see and remove it. */
export interface DamagedSnapshot {
  id: string;
  function: string;
  dir: string;
  problem: string;
}

export interface SnapshotDraft {
  id: string;
  function: string;
  /** Where the files go while they are written. */
  dir: string;
  statePath: string;
  memPath: string;
  sumsPath: string;
}

const PARTIAL = ".partial";
const QUARANTINE = "quarantine.json";

function filesOf(dir: string) {
  return { statePath: join(dir, "state"), memPath: join(dir, "mem"), sumsPath: join(dir, "mem.sums") };
}

export class SnapshotStore {
  readonly #root: string;
  constructor(paths: StatePaths) {
    this.#root = join(paths.root, "snapshots");
  }

  /**
   * Usable snapshots, newest first, and damaged ones (unreadable, older formats, quarantined).
   * With includeQuarantined, a quarantined snapshot whose meta.json reads is listed as usable
   * (for `vhive snapshot verify`, which inspects it).
   */
  async list(options: { includeQuarantined?: boolean } = {}): Promise<{ snapshots: StoredSnapshot[]; damaged: DamagedSnapshot[] }> {
    const snapshots: StoredSnapshot[] = [];
    const damaged: DamagedSnapshot[] = [];
    for (const fn of await readdir(this.#root).catch(() => [] as string[])) {
      for (const id of await readdir(join(this.#root, fn)).catch(() => [] as string[])) {
        if (id.endsWith(PARTIAL)) continue;
        const dir = join(this.#root, fn, id);
        const loaded = await this.#load(dir, options.includeQuarantined ?? false);
        if ("meta" in loaded) snapshots.push(loaded);
        else damaged.push({ id, function: fn, dir, problem: loaded.problem });
      }
    }
    snapshots.sort((a, b) => b.meta.createdAt.localeCompare(a.meta.createdAt));
    return { snapshots, damaged };
  }

  /** By id, unique id prefix, or function name (its newest snapshot). */
  async resolve(ref: string, options: { includeQuarantined?: boolean } = {}): Promise<StoredSnapshot> {
    const { snapshots, damaged } = await this.list(options);
    const byId = snapshots.filter((s) => s.meta.id.startsWith(ref));
    if (byId.length === 1) return byId[0]!;
    if (byId.length > 1) {
      throw new VhiveError("ERR_VALIDATION", `snapshot id prefix ${ref} matches ${byId.length} snapshots`, { remedy: "give more of the id" });
    }
    const byFunction = snapshots.find((s) => s.meta.function === ref);
    if (byFunction) return byFunction;
    const broken = damaged.find((d) => d.id.startsWith(ref));
    if (broken) {
      throw new VhiveError("ERR_SNAPSHOT_CORRUPT", `snapshot ${broken.id} cannot be used: ${broken.problem}`, {
        remedy: `remove it with \`vhive snapshot rm ${broken.id}\` and create a new one`,
      });
    }
    throw new VhiveError("ERR_SNAPSHOT_NOT_FOUND", `no snapshot ${ref}`, {
      remedy: "vhive snapshot ls lists snapshots; vhive snapshot create <image> makes one",
    });
  }

  async draft(fn: string): Promise<SnapshotDraft> {
    const id = randomBytes(6).toString("hex");
    const dir = join(this.#root, fn, id + PARTIAL);
    await mkdir(dir, { recursive: true });
    return { id, function: fn, dir, ...filesOf(dir) };
  }

  /** Write meta.json and move the draft into place. */
  async commit(draft: SnapshotDraft, meta: SnapshotMeta): Promise<StoredSnapshot> {
    await writeFile(join(draft.dir, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
    const dir = join(this.#root, draft.function, draft.id);
    await rename(draft.dir, dir);
    return { meta, dir, ...filesOf(dir) };
  }

  async discard(draft: SnapshotDraft): Promise<void> {
    await rm(draft.dir, { recursive: true, force: true });
  }

  /** Remove every unfinished draft (what a process killed while saving leaves); returns how many. */
  async removeDrafts(): Promise<number> {
    let removed = 0;
    for (const fn of await readdir(this.#root).catch(() => [] as string[])) {
      for (const id of await readdir(join(this.#root, fn)).catch(() => [] as string[])) {
        if (!id.endsWith(PARTIAL)) continue;
        await rm(join(this.#root, fn, id), { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Remove a snapshot (and whatever else lives in its directory, such as working sets). */
  async remove(ref: string): Promise<string> {
    const { snapshots, damaged } = await this.list();
    const matches = [...snapshots.map((s) => ({ id: s.meta.id, dir: s.dir })), ...damaged].filter((s) => s.id.startsWith(ref));
    if (matches.length !== 1) {
      throw matches.length === 0
        ? new VhiveError("ERR_SNAPSHOT_NOT_FOUND", `no snapshot ${ref}`, { remedy: "vhive snapshot ls lists snapshots" })
        : new VhiveError("ERR_VALIDATION", `snapshot id prefix ${ref} matches ${matches.length} snapshots`, { remedy: "give more of the id" });
    }
    await rm(matches[0]!.dir, { recursive: true, force: true });
    return matches[0]!.id;
  }

  /**
   * Check the files' sizes and the device state's digest against meta.json (cheap: every
   * restore does it; pages are checked by the pager, or by checkPages). Throws a
   * SnapshotCorruptError naming the file.
   */
  async verify(snapshot: StoredSnapshot): Promise<void> {
    const { meta } = snapshot;
    const sizeOf = async (path: string) => (await stat(path).catch(() => undefined))?.size;
    const memBytes = await sizeOf(snapshot.memPath);
    if (memBytes === undefined) throw damagedFile(meta.id, "memory", snapshot.memPath, "the file is missing");
    if (memBytes !== meta.files.mem.bytes) throw damagedFile(meta.id, "memory", snapshot.memPath, `it is ${memBytes} bytes, expected ${meta.files.mem.bytes} (truncated?)`);
    const sumsBytes = await sizeOf(snapshot.sumsPath);
    if (sumsBytes !== meta.files.sums.bytes) throw damagedFile(meta.id, "checksums", snapshot.sumsPath, sumsBytes === undefined ? "the file is missing" : `it is ${sumsBytes} bytes, expected ${meta.files.sums.bytes}`);
    const stateBytes = await sizeOf(snapshot.statePath);
    if (stateBytes === undefined) throw damagedFile(meta.id, "state", snapshot.statePath, "the file is missing");
    if (stateBytes !== meta.files.state.bytes) throw damagedFile(meta.id, "state", snapshot.statePath, `it is ${stateBytes} bytes, expected ${meta.files.state.bytes}`);
    const digest = await digestFile(snapshot.statePath);
    if (digest !== meta.files.state.digest) throw damagedFile(meta.id, "state", snapshot.statePath, `its digest is ${digest}, expected ${meta.files.state.digest} (altered since it was made)`);
  }

  /**
   * Mark a snapshot damaged: it stays on disk for inspection, is listed as damaged (with
   * `reason`), and is never restored again. Idempotent: the first reason is kept.
   */
  async quarantine(snapshot: StoredSnapshot, reason: string): Promise<void> {
    const path = join(snapshot.dir, QUARANTINE);
    if (await stat(path).catch(() => undefined)) return;
    await writeFile(path, JSON.stringify({ reason, at: new Date().toISOString() }, null, 2) + "\n");
  }

  async #load(dir: string, includeQuarantined: boolean): Promise<StoredSnapshot | { problem: string }> {
    const quarantined = includeQuarantined ? undefined : await readFile(join(dir, QUARANTINE), "utf8").catch(() => undefined);
    if (quarantined !== undefined) {
      const reason = (() => {
        try {
          return String((JSON.parse(quarantined) as { reason?: unknown }).reason);
        } catch {
          return "no reason recorded";
        }
      })();
      return { problem: `quarantined: ${reason}` };
    }
    const text = await readFile(join(dir, "meta.json"), "utf8").catch(() => undefined);
    if (text === undefined) return { problem: `${join(dir, "meta.json")} is missing` };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { problem: `${join(dir, "meta.json")} is not valid JSON` };
    }
    const format = (json as { format?: unknown } | null)?.format;
    if (typeof format === "number" && format < SNAPSHOT_FORMAT) {
      return { problem: `made by an older vhive (format ${format}: no page checksums, no reseed after restore); create a new snapshot` };
    }
    const parsed = SnapshotMetaSchema.safeParse(json);
    if (!parsed.success) return { problem: `${join(dir, "meta.json")} is invalid: ${parsed.error.issues.map((i) => i.path.join(".")).join(", ")}` };
    return { meta: parsed.data, dir, ...filesOf(dir) };
  }
}
