/** Locating QEMU and reading its version. */
import { runTool } from "../shared/tool.js";

export interface QemuInfo {
  path: string;
  /** e.g. "7.2.22" */
  version: string;
  /** The whole first line of --version, with the distribution's package version. */
  versionLine: string;
}

export async function qemuInfo(path = "qemu-system-x86_64"): Promise<QemuInfo> {
  const { stdout } = await runTool(path, ["--version"], { failCode: "ERR_TOOL_MISSING", step: "asking QEMU its version" });
  const versionLine = stdout.split("\n")[0] ?? "";
  const version = /version (\d+\.\d+\.\d+)/.exec(versionLine)?.[1] ?? "unknown";
  return { path, version, versionLine };
}
