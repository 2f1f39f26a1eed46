import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, VhiveError, isVhiveError } from "../../../src/shared/errors.js";

describe("error codes", () => {
  it("docs/errors.md has one row for every code, with the same meaning, and no others", async () => {
    const doc = await readFile(new URL("../../../docs/errors.md", import.meta.url), "utf8");
    const rows = new Map<string, string[]>();
    for (const line of doc.split("\n")) {
      const match = /^\| `(ERR_[A-Z_]+)` \| (.+?) \| (.+?) \|$/.exec(line);
      if (match) rows.set(match[1]!, [match[2]!, match[3]!]);
    }
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    for (const [code, meaning] of Object.entries(ERROR_CODES)) {
      expect(rows.get(code)?.[0], code).toBe(meaning);
      expect(rows.get(code)?.[1]?.length, `${code} has a remedy`).toBeGreaterThan(10);
    }
  });

  it("isVhiveError matches on code, not message", () => {
    const error = new VhiveError("ERR_PORT_IN_USE", "anything", { remedy: "x" });
    expect(isVhiveError(error)).toBe(true);
    expect(isVhiveError(error, "ERR_PORT_IN_USE")).toBe(true);
    expect(isVhiveError(error, "ERR_INVOKE")).toBe(false);
    expect(isVhiveError(new Error("ERR_PORT_IN_USE"))).toBe(false);
  });
});
