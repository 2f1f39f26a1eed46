/**
 * Page checksums of a snapshot's files, through native/build/vhive-pagesum (the same XXH3-64
 * the pager checks each page with; format: native/include/vhive_sums.h):
 *
 *   snapshots/<function>/<id>/mem.sums       one checksum per page of mem, written at save
 *   snapshots/<function>/<id>/verified.json  the memory file's identity (inode, size, mtime,
 *                                            ctime) when its pages last matched mem.sums
 *
 * The REAP modes check every page as the pager reads it. In the vanilla modes QEMU reads mem
 * itself, so a restore first compares the file's identity with verified.json: any write to the
 * file since (a stray dd, a copy over it) changes its ctime, and the whole file is checked
 * again before it is used. Damage without a write (bit rot) is found by the pager, or by
 * `vhive snapshot verify`.
 */
import { randomBytes } from "node:crypto";
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { assertNativeBuilt, nativePath } from "../shared/native.js";
import { runTool } from "../shared/tool.js";

/** One file as vhive-pagesum checked it. */
export interface FileCheck {
  role: "memory" | "checksums" | "working-set pages" | "working-set index";
  file: string;
  pages: number;
  /** Pages (or entries) that failed; badOffsets has the first few, as byte offsets into the file. */
  bad: number;
  badOffsets: number[];
  problem?: string;
}

const CheckEventSchema = z.object({
  event: z.literal("checked"),
  role: z.enum(["memory", "checksums", "working-set pages", "working-set index"]),
  file: z.string(),
  pages: z.number(),
  bad: z.number(),
  badOffsets: z.array(z.number()),
  problem: z.string().optional(),
});

async function pagesum(args: string[], step: string): Promise<Record<string, unknown>[]> {
  await assertNativeBuilt(["vhive-pagesum"]);
  const { stdout } = await runTool(nativePath("vhive-pagesum"), args, { failCode: "ERR_SNAPSHOT_CORRUPT", step, acceptCodes: [3] });
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Hash every page of the memory file into sumsPath (at save). */
export async function writePageSums(memPath: string, sumsPath: string): Promise<{ pages: number; ms: number }> {
  const events = await pagesum(["write", memPath, sumsPath], `computing the page checksums of ${memPath}`);
  const written = events.find((event) => event.event === "sums-written");
  return { pages: Number(written?.pages ?? 0), ms: Number(written?.us ?? 0) / 1000 };
}

/** Check every page of the memory file (and of each encoding of a working set, if given) against its checksums. */
export async function checkPages(files: { memPath: string; sumsPath: string; workingSets?: readonly { pagesPath: string; indexPath: string }[] }): Promise<FileCheck[]> {
  const args = ["verify", files.memPath, files.sumsPath];
  for (const ws of files.workingSets ?? []) args.push(ws.pagesPath, ws.indexPath);
  const events = await pagesum(args, `checking the pages of ${files.memPath}`);
  return events.filter((event) => event.event === "checked").map((event) => CheckEventSchema.parse(event));
}

const StampSchema = z.strictObject({ ino: z.number(), size: z.number(), mtimeNs: z.string(), ctimeNs: z.string(), at: z.string() });

function stampPath(snapshotDir: string): string {
  return join(snapshotDir, "verified.json");
}

async function identity(memPath: string): Promise<Omit<z.infer<typeof StampSchema>, "at">> {
  const st = await stat(memPath, { bigint: true });
  return { ino: Number(st.ino), size: Number(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
}

/** Whether the memory file is the very file whose pages last matched their checksums. */
export async function memoryUnchangedSinceVerified(snapshotDir: string, memPath: string): Promise<boolean> {
  const text = await readFile(stampPath(snapshotDir), "utf8").catch(() => undefined);
  if (text === undefined) return false;
  const parsed = StampSchema.safeParse(JSON.parse(text));
  if (!parsed.success) return false;
  const now = await identity(memPath);
  const then = parsed.data;
  return now.ino === then.ino && now.size === then.size && now.mtimeNs === then.mtimeNs && now.ctimeNs === then.ctimeNs;
}

/** Remember the memory file's identity after its pages matched (written atomically). */
export async function stampVerified(snapshotDir: string, memPath: string): Promise<void> {
  const stamp = { ...(await identity(memPath)), at: new Date().toISOString() };
  const path = stampPath(snapshotDir);
  // Restores of one snapshot may run at once: each writes its own draft.
  const draft = `${path}.${randomBytes(4).toString("hex")}.partial`;
  await writeFile(draft, JSON.stringify(stamp, null, 2) + "\n");
  await rename(draft, path);
}
