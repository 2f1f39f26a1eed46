#!/usr/bin/env node
/**
 * containerd-shim-vhive-v2: vhive as a containerd runtime (io.containerd.vhive.v2). containerd
 * runs it with `start` (start.ts) to get a shim's address, without an action as the server it
 * then talks to (serve.ts), and with `delete` (delete.ts) to clean up after a shim that died.
 * Each module is loaded only for its action: start and delete must be quick.
 */
import { parseShimFlags } from "./flags.js";
import { RUNTIME_TYPE, SHIM_BINARY } from "./names.js";

async function main(): Promise<void> {
  const flags = parseShimFlags(process.argv.slice(2));
  if (flags.version) {
    process.stdout.write(`${SHIM_BINARY} (vhive)\n`);
    return;
  }
  if (flags.info) {
    process.stdout.write(runtimeInfo());
    return;
  }
  switch (flags.action) {
    case "start": {
      const { startShim } = await import("./start.js");
      process.stdout.write(await startShim(flags));
      return;
    }
    case "delete": {
      const { deleteShim } = await import("./delete.js");
      process.stdout.write(await deleteShim(flags));
      return;
    }
    case "serve": {
      const { serveShim } = await import("./serve.js");
      await serveShim(flags);
    }
  }
}

/**
 * containerd.types.RuntimeInfo (api/types/introspection.proto) with only its name (field 1):
 * the shim offers no runtime options or OCI features for containerd to check a spec against.
 */
function runtimeInfo(): Uint8Array {
  const name = Buffer.from(RUNTIME_TYPE);
  return Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const remedy = (error as { remedy?: string } | null)?.remedy;
  process.stderr.write(`${SHIM_BINARY}: ${message}${remedy ? ` (what to do: ${remedy})` : ""}\n`);
  process.exit(1);
});
