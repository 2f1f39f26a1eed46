/** vhive's native helpers, built by `make -C native` into native/build/. */
import { access } from "node:fs/promises";
import { VhiveError } from "./errors.js";
import { packagePath } from "./package-root.js";

/** The pager and its QEMU shim (host), the checksum and working-set tools (host), the guest agent (initramfs). */
export type NativeHelper = "vhive-pager" | "libvhive-qemu-uffd.so" | "vhive-pagesum" | "vhive-wspack" | "vhive-agent";

export function nativePath(name: NativeHelper): string {
  return packagePath("native", "build", name);
}

/** Throws ERR_NATIVE_MISSING naming the first helper that is not built. */
export async function assertNativeBuilt(names: readonly NativeHelper[] = ["vhive-pager", "libvhive-qemu-uffd.so", "vhive-pagesum", "vhive-wspack", "vhive-agent"]): Promise<void> {
  for (const name of names) {
    await access(nativePath(name)).catch(() => {
      throw new VhiveError("ERR_NATIVE_MISSING", `${nativePath(name)} is missing`, { remedy: "run `make -C native` (scripts/setup.sh does it)" });
    });
  }
}
