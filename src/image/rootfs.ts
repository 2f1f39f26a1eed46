/**
 * Turning a root directory into a function image: write /.vhive/run, then pack the tree into an
 * ext4 file with mkfs.ext4 -d (no loop mounts, no root needed beyond file ownership). The guest
 * mounts it read-only under a tmpfs overlay, so no journal is needed.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runTool } from "../shared/tool.js";
import { entryScript, type FunctionConfig } from "./config.js";

const MIB = 1024 * 1024;

export async function writeEntryScript(rootDir: string, config: FunctionConfig): Promise<void> {
  await mkdir(join(rootDir, ".vhive"), { recursive: true, mode: 0o755 });
  await writeFile(join(rootDir, ".vhive", "run"), entryScript(config), { mode: 0o755 });
  await chmod(join(rootDir, ".vhive", "run"), 0o755);
}

/** Pack rootDir into an ext4 image at target, sized to its content plus headroom. */
export async function makeExt4(rootDir: string, target: string, signal?: AbortSignal): Promise<void> {
  const { stdout } = await runTool("du", ["-sb", rootDir], { failCode: "ERR_IMAGE_BUILD", step: "measuring the root filesystem", signal });
  const contentBytes = Number.parseInt(stdout, 10);
  // ext4 metadata and block rounding of many small files take about a fifth again.
  const sizeMib = Math.ceil((contentBytes * 1.25) / MIB) + 32;
  await runTool(
    "mkfs.ext4",
    ["-q", "-F", "-L", "vhive-rootfs", "-O", "^has_journal", "-i", "8192", "-d", rootDir, target, `${sizeMib}M`],
    { failCode: "ERR_IMAGE_BUILD", step: "packing the root filesystem with mkfs.ext4", signal },
  );
}
