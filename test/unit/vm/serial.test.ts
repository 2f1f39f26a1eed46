import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { parseConsoleLine, SerialConsole, type GuestEvent } from "../../../src/vm/serial.js";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { readFile } from "node:fs/promises";

let dir: TempDir | undefined;
afterEach(async () => dir?.remove());

describe("serial console", () => {
  it("parses init's markers and kernel panics", () => {
    expect(parseConsoleLine("vhive-init: start", 1)).toEqual({ kind: "init-start", atMs: 1 });
    expect(parseConsoleLine("vhive-init: exit 3", 2)).toEqual({ kind: "exit", atMs: 2, status: 3 });
    expect(parseConsoleLine("vhive-init: error cannot mount the function image /dev/vda (ext4)", 3)).toEqual({
      kind: "init-error",
      atMs: 3,
      message: "cannot mount the function image /dev/vda (ext4)",
    });
    expect(parseConsoleLine("[    1.2] Kernel panic - not syncing: Attempted to kill init!", 4)).toEqual({
      kind: "panic",
      atMs: 4,
      message: "Attempted to kill init!",
    });
    expect(parseConsoleLine("hello from the function", 5)).toBeUndefined();
  });

  it("logs every byte, keeps the last lines, and reports events split across chunks", async () => {
    dir = await makeTempDir("serial-test");
    const input = new PassThrough();
    const console = new SerialConsole(input, `${dir.path}/serial.log`, 3);
    const events: GuestEvent[] = [];
    console.onEvent((event) => events.push(event));
    input.write("line one\r\nline two\nvhive-init: st");
    input.write("art\nline four\nvhive-init: exec\n");
    input.end("tail without newline");
    await console.closed();
    expect(events.map((event) => event.kind)).toEqual(["init-start", "exec"]);
    expect(console.tail()).toBe("line four\nvhive-init: exec\ntail without newline");
    expect(await readFile(`${dir.path}/serial.log`, "utf8")).toContain("line one\r\nline two\nvhive-init: start\n");
  });
});
