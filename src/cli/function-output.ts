/** How the daemon commands print functions. */
import { SHORT_ID_LENGTH } from "../image/index.js";
import type { FunctionRecord } from "../store/index.js";

export const FUNCTION_HEADER = ["NAME", "IMAGE", "START", "MEMORY", "KEEPALIVE", "MIN", "MAX", "CONCURRENCY", "POOL"];

export function functionLine(fn: FunctionRecord): string[] {
  return [fn.name, `${fn.imageRef} (${fn.imageId.slice(0, SHORT_ID_LENGTH)})`, fn.start, `${fn.memMib} MiB`, fn.keepalivePolicy === "fixed" ? `${fn.keepaliveMs / 1000}s` : fn.keepalivePolicy, String(fn.minInstances), String(fn.maxInstances), String(fn.concurrency), poolOf(fn)];
}

/** "0", "2", or "2 installed": the function's pre-started VMMs. */
function poolOf(fn: FunctionRecord): string {
  const depth = fn.poolDepth ?? 0;
  return depth > 0 && fn.poolInstalled ? `${depth} installed` : String(depth);
}
