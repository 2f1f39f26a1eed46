/**
 * `vhive bench load --url`: the command run in-process, as main.ts runs it, against a gRPC and an
 * HTTP function on loopback (no daemon): what it sends, the results it writes, what it refuses.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import yargs from "yargs";
import { afterEach, describe, expect, it } from "vitest";
import type { LoadReport } from "../../../src/bench/index.js";
import { benchLoadCommand } from "../../../src/cli/commands/bench-load.js";
import type { CliContext } from "../../../src/cli/context.js";
import { isVhiveError } from "../../../src/shared/errors.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { greet, startGreeter, startHttpServer } from "../invoke/fixtures.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Run `vhive bench load ARGV`; resolves with what it printed. */
async function benchLoad(argv: string[]): Promise<string[]> {
  const state = await makeTempDir("bench-load-cli");
  cleanups.push(() => state.remove());
  const printed: string[] = [];
  const context: CliContext = {
    stateDir: state.path,
    log: new NoOpLog(),
    signal: new AbortController().signal,
    print: (line) => printed.push(line),
    printJson: (value) => printed.push(JSON.stringify(value)),
  };
  const args = await benchLoadCommand.builder(yargs(argv) as never).parseAsync();
  await benchLoadCommand.run(args, context);
  return printed;
}

async function refusal(argv: string[]): Promise<string> {
  try {
    await benchLoad(argv);
  } catch (error) {
    if (isVhiveError(error, "ERR_VALIDATION")) return error.message;
    throw error;
  }
  throw new Error("expected ERR_VALIDATION");
}

async function outDir(): Promise<string> {
  const dir = await makeTempDir("bench-load-out");
  cleanups.push(() => dir.remove());
  return dir.path;
}

const quick = ["--rps", "20", "--arrival", "uniform", "--duration", "200ms"];

describe("vhive bench load --url", () => {
  it("drives a gRPC function at host:port with the default request, and writes rows and a report without start kinds", async () => {
    const names: string[] = [];
    const port = await startGreeter(cleanups, (call, callback) => {
      names.push(call.request.name);
      greet(call, callback);
    });
    const out = await outDir();
    const printed = await benchLoad(["--url", `127.0.0.1:${port}`, ...quick, "--out", out]);
    expect(names).toEqual(Array(4).fill("world"));
    const report = JSON.parse(await readFile(join(out, "load.json"), "utf8")) as LoadReport;
    expect(report).toMatchObject({ url: `grpc://127.0.0.1:${port}`, function: `grpc://127.0.0.1:${port}`, deployment: null, accel: null, method: "helloworld.Greeter/SayHello", data: "world" });
    expect(report.rows.map((row) => [row.status, row.start])).toEqual(Array(4).fill(["ok", null]));
    const csv = (await readFile(join(out, "load.csv"), "utf8")).trim().split("\n");
    expect(csv).toHaveLength(5);
    expect(await readFile(join(out, "report.md"), "utf8")).toContain("Start kinds are unknown");
    expect(printed.join("\n")).toContain(`at grpc://127.0.0.1:${port}, not a vhive daemon: start kinds unknown`);
  });

  it("posts --data to an HTTP function's path and names the function as --function says", async () => {
    const seen: string[] = [];
    const port = await startHttpServer(cleanups, (request, body, response) => {
      seen.push(`${request.method} ${request.url} ${body}`);
      response.end("ok");
    });
    const out = await outDir();
    await benchLoad(["--url", `http://127.0.0.1:${port}/invoke`, "--function", "my-fn", "--data", "hi", ...quick, "--out", out, "--json"]);
    expect(seen).toEqual(Array(4).fill("POST /invoke hi"));
    const report = JSON.parse(await readFile(join(out, "load.json"), "utf8")) as LoadReport;
    expect(report).toMatchObject({ url: `http://127.0.0.1:${port}/invoke`, function: "my-fn", deployment: null, data: "hi" });
    expect(report.method).toBeUndefined();
  });

  it("refuses a request that does not fit the method before sending anything, a bad address, and --method without --url", async () => {
    let calls = 0;
    const port = await startGreeter(cleanups, (call, callback) => {
      calls++;
      greet(call, callback);
    });
    expect(await refusal(["--url", `127.0.0.1:${port}`, "--data", '{"nope":1}', ...quick])).toMatch(/nope/);
    expect(calls).toBe(0);
    expect(await refusal(["--url", "ftp://somewhere:1", ...quick])).toContain("ftp://somewhere:1 is not a function address");
    expect(await refusal(["--method", "helloworld.Greeter/SayHello", ...quick])).toContain("--method and --proto go with --url");
  });
});
