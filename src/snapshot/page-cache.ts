/**
 * Page-cache control for cold starts. Evicting a snapshot's files makes the next restore read
 * from disk without flushing the whole machine's cache: GNU dd with iflag=nocache and count=0
 * calls posix_fadvise(POSIX_FADV_DONTNEED) on the whole file, which Node cannot do itself.
 * DONTNEED only drops clean pages, so snapshot files are fsynced when they are made.
 */
import { open, writeFile } from "node:fs/promises";
import { runTool } from "../shared/tool.js";

export async function evictFromPageCache(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    await runTool("dd", [`if=${path}`, "iflag=nocache", "count=0", "status=none"], {
      failCode: "ERR_VALIDATION",
      step: `evicting ${path} from the page cache`,
    });
  }
}

/**
 * evictFromPageCache for every non-empty regular file under a directory, in one process (GNU
 * find runs dd for each: a container image's layers are thousands of files). What vanishes
 * meanwhile (containerd collecting a removed container's snapshot) is passed over: find then
 * exits 1, which is taken as done.
 */
export async function evictTreeFromPageCache(dir: string): Promise<void> {
  await runTool("find", [dir, "-ignore_readdir_race", "-xdev", "-type", "f", "-size", "+0", "-exec", "dd", "if={}", "iflag=nocache", "count=0", "status=none", ";"], {
    failCode: "ERR_VALIDATION",
    step: `evicting the files under ${dir} from the page cache`,
    acceptCodes: [1],
  });
}

/** Write back and drop every clean page on the machine (needs root). */
export async function dropAllCaches(): Promise<void> {
  await runTool("sync", [], { failCode: "ERR_VALIDATION", step: "sync before dropping caches" });
  await writeFile("/proc/sys/vm/drop_caches", "3\n");
}

/** Bytes of a file resident in the page cache (fincore from util-linux). */
export async function residentBytes(path: string): Promise<number> {
  const { stdout } = await runTool("fincore", ["--bytes", "--noheadings", "--output", "RES", path], {
    failCode: "ERR_VALIDATION",
    step: `asking fincore about ${path}`,
  });
  return Number.parseInt(stdout.trim(), 10);
}

/** fsync a file, so that its pages are clean and can later be evicted. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
