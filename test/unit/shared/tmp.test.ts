import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeTempDir, removeLeftoverTempDirs } from "../../../src/shared/tmp.js";

describe("temporary directories", () => {
  it("are removed by their owner, and any left over by the exit hook", async () => {
    const kept = await makeTempDir("tmp-test");
    const removed = await makeTempDir("tmp-test");
    await writeFile(join(kept.path, "pager.sock"), "");
    expect(kept.path).not.toBe(removed.path);
    await removed.remove();
    expect(existsSync(removed.path)).toBe(false);
    expect(existsSync(kept.path)).toBe(true);
    removeLeftoverTempDirs();
    expect(existsSync(kept.path)).toBe(false);
    await kept.remove(); // still safe after the hook ran
  });
});
