/**
 * scripts/lib/go-test-results.mjs, which turns the CRI suite's test2json events into results:
 * fed events as `go tool test2json -t` prints them for a pass, a testify failure, a t.Fatal,
 * a skip with its message, a failing subtest and a test a panic cut short.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { packagePath } from "../../../src/shared/package-root.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const SCRIPT = packagePath("scripts", "lib", "go-test-results.mjs");
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const event = (Action: string, Test: string | undefined, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ Time: "2026-01-01T00:00:00Z", Action, Package: "integration", ...(Test ? { Test } : {}), ...extra });
const output = (Test: string | undefined, Output: string) => event("output", Test, { Output });

const EVENTS = [
  "time=\"2026-01-01\" level=info msg=\"Using the following image list\"", // not JSON: the binary's own line
  event("run", "TestPasses"),
  output("TestPasses", "=== RUN   TestPasses\n"),
  output("TestPasses", "--- PASS: TestPasses (1.20s)\n"),
  event("pass", "TestPasses", { Elapsed: 1.2 }),
  event("run", "TestTestify"),
  output("TestTestify", "    main_test.go:64: \n"),
  output("TestTestify", "        \tError Trace:\tmain_test.go:64\n"),
  output("TestTestify", "        \tError:      \tReceived unexpected error:\n"),
  output("TestTestify", "        \t            \trpc error: code = Unknown desc = no such host\n"),
  output("TestTestify", "        \tTest:       \tTestTestify\n"),
  output("TestTestify", "        \tMessages:   \twait for containerd to be killed\n"),
  event("fail", "TestTestify", { Elapsed: 30.4 }),
  event("run", "TestFatal"),
  output("TestFatal", "    restart_test.go:12: the sandbox is gone\n"),
  event("fail", "TestFatal", { Elapsed: 0.5 }),
  event("run", "TestSkips"),
  output("TestSkips", "    image_load_test.go:35: Docker is not available: exec: \"docker\": not found\n"),
  output("TestSkips", "--- SKIP: TestSkips (0.00s)\n"),
  event("skip", "TestSkips", { Elapsed: 0 }),
  event("run", "TestParent"),
  event("run", "TestParent/child"),
  output("TestParent/child", "    parent_test.go:9: child broke\n"),
  event("fail", "TestParent/child", { Elapsed: 0.1 }),
  event("fail", "TestParent", { Elapsed: 0.2 }),
  event("run", "TestCutShort"),
  output(undefined, "panic: test timed out after 1m0s\n"),
  event("fail", undefined, { Elapsed: 60 }),
].join("\n");

describe("go-test-results.mjs", () => {
  it("gives each top-level test its result and a one-line reason, and prints the summary", async () => {
    const dir = await makeTempDir("go-results");
    cleanups.push(() => dir.remove());
    const tsv = join(dir.path, "results.tsv");
    const md = join(dir.path, "results.md");
    const run = spawnSync(process.execPath, [SCRIPT, "--tsv", tsv, "--md", md, "--title", "the suite"], { input: EVENTS, encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("1 passed, 4 failed, 1 skipped\n");
    expect(run.stderr).toContain("FAIL TestCutShort");

    const rows = readFileSync(tsv, "utf8").trim().split("\n").map((line) => line.split("\t"));
    expect(rows).toEqual([
      ["test", "result", "seconds", "reason"],
      ["TestPasses", "pass", "1.2", ""],
      ["TestTestify", "fail", "30.4", "Received unexpected error: rpc error: code = Unknown desc = no such host (wait for containerd to be killed)"],
      ["TestFatal", "fail", "0.5", "the sandbox is gone"],
      ["TestSkips", "skip", "0.0", 'Docker is not available: exec: "docker": not found'],
      ["TestParent", "fail", "0.2", "child broke"],
      ["TestCutShort", "fail", "0.0", "did not finish: panic: test timed out after 1m0s"],
    ]);
    const table = readFileSync(md, "utf8");
    expect(table.startsWith("the suite\n\n1 passed, 4 failed, 1 skipped.\n")).toBe(true);
    expect(table).toContain("| TestSkips | skip | 0.0 | Docker is not available: exec: \"docker\": not found |");
  });
});
