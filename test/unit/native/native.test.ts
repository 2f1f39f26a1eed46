/**
 * The native helpers' own C tests (native/tests/test_native.c): the pager and the QEMU shim
 * together, with a child process that maps memory the way QEMU does. Needs root.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { packagePath } from "../../../src/shared/package-root.js";

describe("native pager and shim", () => {
  it("pass their C tests: lazy, record, prefetch, all, bad handshake, owner death, random advice, working sets of every codec and read, damaged pages, blocks, indexes and formats, checksums", () => {
    const output = execFileSync("make", ["-s", "-C", packagePath("native"), "test"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(output).toMatch(/^17 passed, 0 failed$/m);
    expect(output).not.toMatch(/^FAIL/m);
  });
});
