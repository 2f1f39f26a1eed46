/**
 * The snapshot store on disk:
 *
 *   snapshots/<function>/<id>/meta.json   fingerprint and file sizes/digests (written last)
 *   snapshots/<function>/<id>/state       QEMU device state (migration stream, ~60 KB)
 *   snapshots/<function>/<id>/mem         guest memory, one file the size of guest RAM
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
import { SnapshotMetaSchema, type SnapshotMeta } from "./meta.js";

export interface StoredSnapshot {
  meta: SnapshotMeta;
  dir: string;
  statePath: string;
  memPath: string;
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
}

const PARTIAL = ".partial";

function filesOf(dir: string) {
  return { statePath: join(dir, "state"), memPath: join(dir, "mem") };
}

export class SnapshotStore {
  readonly #root: string;
  constructor(paths: StatePaths) {
    this.#root = join(paths.root, "snapshots");
  }

  async list(): Promise<{ snapshots: StoredSnapshot[]; damaged: DamagedSnapshot[] }> {
    const snapshots: StoredSnapshot[] = [];
    const damaged: DamagedSnapshot[] = [];
    for (const fn of await readdir(this.#root).catch(() => [] as string[])) {
      for (const id of await readdir(join(this.#root, fn)).catch(() => [] as string[])) {
        if (id.endsWith(PARTIAL)) continue;
        const dir = join(this.#root, fn, id);
        const loaded = await this.#load(dir);
        if ("meta" in loaded) snapshots.push(loaded);
        else damaged.push({ id, function: fn, dir, problem: loaded.problem });
      }
    }
    snapshots.sort((a, b) => b.meta.createdAt.localeCompare(a.meta.createdAt));
    return { snapshots, damaged };
  }

  /** By id, unique id prefix, or function name (its newest snapshot). */
  async resolve(ref: string): Promise<StoredSnapshot> {
    const { snapshots, damaged } = await this.list();
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

  /** Check that the files are what meta.json says; throws ERR_SNAPSHOT_CORRUPT naming the file. */
  async verify(snapshot: StoredSnapshot): Promise<void> {
    const { meta } = snapshot;
    const corrupt = (what: string) =>
      new VhiveError("ERR_SNAPSHOT_CORRUPT", `snapshot ${meta.id}: ${what}`, {
        remedy: `the snapshot is kept for inspection in ${snapshot.dir}; remove it with \`vhive snapshot rm ${meta.id}\` and create a new one`,
      });
    const memBytes = (await stat(snapshot.memPath).catch(() => undefined))?.size;
    if (memBytes === undefined) throw corrupt(`memory file ${snapshot.memPath} is missing`);
    if (memBytes !== meta.files.mem.bytes) throw corrupt(`memory file ${snapshot.memPath} is ${memBytes} bytes, expected ${meta.files.mem.bytes} (truncated?)`);
    const stateBytes = (await stat(snapshot.statePath).catch(() => undefined))?.size;
    if (stateBytes === undefined) throw corrupt(`device state file ${snapshot.statePath} is missing`);
    if (stateBytes !== meta.files.state.bytes) throw corrupt(`device state file ${snapshot.statePath} is ${stateBytes} bytes, expected ${meta.files.state.bytes}`);
    const digest = await digestFile(snapshot.statePath);
    if (digest !== meta.files.state.digest) throw corrupt(`device state file ${snapshot.statePath} has digest ${digest}, expected ${meta.files.state.digest} (altered since it was made)`);
  }

  async #load(dir: string): Promise<StoredSnapshot | { problem: string }> {
    const text = await readFile(join(dir, "meta.json"), "utf8").catch(() => undefined);
    if (text === undefined) return { problem: `${join(dir, "meta.json")} is missing` };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { problem: `${join(dir, "meta.json")} is not valid JSON` };
    }
    const parsed = SnapshotMetaSchema.safeParse(json);
    if (!parsed.success) return { problem: `${join(dir, "meta.json")} is invalid: ${parsed.error.issues.map((i) => i.path.join(".")).join(", ")}` };
    return { meta: parsed.data, dir, ...filesOf(dir) };
  }
}
