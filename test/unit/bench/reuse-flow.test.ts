/** The reuse experiment's steps with the orchestrator faked: the pages each input "touches" are made up. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { makeTempDir, type TempDir } from "../../../src/shared/tmp.js";
import { indexFile, PAGE, traceFile } from "../test-shared/ws-index.js";

let dir: TempDir;
const recorded: string[] = [];

/** Input A touches pages 0-99; B pages 3-102; the second recording of A also page 200. */
const TOUCHED: Record<string, number[]> = { world: Array.from({ length: 100 }, (_, i) => i), "vhive reuse": Array.from({ length: 100 }, (_, i) => i + 3) };

vi.mock("../../../src/start/index.js", () => ({
  usableSnapshot: vi.fn(async () => ({ meta: { id: "snap" }, dir: dir.path, memPath: join(dir.path, "mem"), statePath: join(dir.path, "state") })),
  restoreOnce: vi.fn(async (_host: unknown, snapshot: { dir: string }, data: string, options: { mode: string }) => {
    const again = recorded.filter((input) => input === data).length > 0;
    recorded.push(`${options.mode} ${data}`.replace(/^record /, ""));
    const pages = again ? [...TOUCHED[data]!, 200] : TOUCHED[data]!;
    await writeFile(join(snapshot.dir, "ws-lz4.index"), indexFile(pages.map((page) => page * PAGE)));
    await writeFile(join(snapshot.dir, "trace"), traceFile([...pages].reverse().map((page) => page * PAGE)));
    return { totalMs: 900, wsPages: pages.length, wsBytes: pages.length * PAGE, text: `Hello, ${data}!` };
  }),
}));
vi.mock("../../../src/memory/index.js", async (importOriginal) => ({
  ...(await importOriginal<typeof import("../../../src/memory/index.js")>()),
  loadWorkingSet: vi.fn(async () => ({ meta: { pageSize: PAGE }, tracePath: join(dir.path, "trace"), encodings: [{ codec: "lz4", indexPath: join(dir.path, "ws-lz4.index") }] })),
}));

const { benchReuse } = await import("../../../src/bench/reuse.js");

beforeEach(async () => {
  dir = await makeTempDir("reuse-flow");
  recorded.length = 0;
  const mem = Buffer.alloc(1000 * PAGE);
  for (let page = 0; page < 400; page++) mem[page * PAGE + 1] = 1;
  await writeFile(join(dir.path, "mem"), mem);
});
afterEach(() => dir.remove());

describe("the reuse experiment", () => {
  it("records A, B and A again, keeps each index, and compares them", async () => {
    const out = join(dir.path, "out");
    const helloworld = { name: "helloworld", config: { protocol: "grpc" } } as never;
    const http = { name: "web", config: { protocol: "http" } } as never;
    const report = await benchReuse({ accel: "tcg" } as never, [helloworld, http], { outDir: out });
    expect(recorded).toEqual(["world", "vhive reuse", "world"]);
    expect(report.skipped).toEqual([{ function: "web", reason: expect.stringContaining("no inputs") }]);
    const [f] = report.functions;
    expect(f!.aVsB).toEqual({ aPages: 100, bPages: 100, commonPages: 97, shareOfA: 0.97, shareOfB: 0.97 });
    expect(f!.aVsA2).toMatchObject({ aPages: 100, bPages: 101, commonPages: 100, shareOfA: 1 });
    expect(f!).toMatchObject({ touchedPages: 400, memPages: 1000, wsShareOfTouched: 0.25, pageSizeBytes: PAGE });
    expect(f!.recordings.map((r) => r.indexFile)).toEqual(["A", "B", "A2"].map((label) => join(out, "ws", `helloworld-${label}.index`)));
  });
});
