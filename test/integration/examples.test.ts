/**
 * The README's recipe example, docs/examples/wordcount (a function with a gRPC service of its
 * own, a request of two fields, a data directory read from its working directory), built and
 * run exactly as the README shows, so the example cannot rot; then what a user who gets the
 * method or the data wrong meets: --data refused before any boot, UNIMPLEMENTED naming the
 * method, a deploy that fixes the method without a rebuild, and the invocation timeout.
 */
import { readFile } from "node:fs/promises";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { startDaemon } from "../../src/daemon/index.js";
import { buildImage, type StoredImage } from "../../src/image/index.js";
import { MemoryLog } from "../../src/shared/log.js";
import { packagePath } from "../../src/shared/package-root.js";
import { StatePaths } from "../../src/shared/paths.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { expectNothingLeft, runCli, stateDir } from "./harness.js";

const EXAMPLE = "docs/examples/wordcount";
const cleanups = new Cleanups();
let image: StoredImage;

beforeAll(async () => {
  image = await buildImage(new StatePaths(stateDir()), packagePath(EXAMPLE));
});

afterEach(async () => {
  await cleanups.run();
  await expectNothingLeft();
});

/** The README's command for the example, and the reply it says that prints. */
async function readmeExample(): Promise<{ data: string; reply: string }> {
  const readme = await readFile(packagePath("README.md"), "utf8");
  const command = new RegExp(`^node dist/cli/main\\.js run ${EXAMPLE} --data '(.*)'$`, "m").exec(readme);
  const printed = /^prints `(reply: .*?)`/m.exec(readme.slice(command?.index ?? 0));
  expect(command, "the README runs the example").not.toBeNull();
  expect(printed, "the README says what it prints").not.toBeNull();
  return { data: command![1]!, reply: printed![1]! };
}

describe("the README's example", () => {
  it("builds, and `vhive run` with the README's --data prints the reply the README shows", async () => {
    const { data, reply } = await readmeExample();
    const result = await runCli(["run", EXAMPLE, "--data", data]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split("\n")[0]).toBe(reply);
    // Without --data: the recipe's first input.
    const json = JSON.parse((await runCli(["run", EXAMPLE, "--json"])).stdout);
    expect(json.response).toEqual({ words: 7, top_words: ["brown"] });
  });

  it("--data that is not a CountRequest is refused before anything boots", async () => {
    for (const [data, says] of [
      ["hello", "--data must be a JSON object for wordcount.CountRequest, whose fields are { text: string, top: int32 }"],
      ['{"text": "a b", "top": "two"}', '--data field "top" is "two", but wordcount.CountRequest.top is int32: expected an integer'],
    ] as const) {
      const result = await runCli(["--log-level", "debug", "run", EXAMPLE, "--data", data]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`error [ERR_VALIDATION]: ${says}`);
      expect(result.stderr).not.toContain("qemu started");
    }
  });

  it("on the daemon: the wrong method answers UNIMPLEMENTED naming it; a deploy with the right one fixes it without a rebuild; --timeout limits a call", async () => {
    const log = new MemoryLog();
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log, memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    const cli = (...args: string[]) => runCli(args, { env: { ...process.env, VHIVE_URL: daemon.url } });
    const fn = `wc-${Date.now().toString(36)}`;
    cleanups.push(() => cli("rm", fn));

    const wrong = await cli("deploy", fn, "--image", image.id, "--start", "boot", "--method", "helloworld.Greeter/SayHello", "--proto", "protos/helloworld.proto");
    expect(wrong.code, wrong.stderr).toBe(0);
    const unimplemented = await cli("invoke", fn, "--data", "world");
    expect(unimplemented.code).toBe(1);
    expect(unimplemented.stderr).toMatch(/^error \[ERR_INVOKE\]: helloworld\.Greeter\/SayHello failed: UNIMPLEMENTED: the function does not serve helloworld\.Greeter\/SayHello \(.*\); helloworld\.proto defines no other method$/m);
    expect(unimplemented.stderr).toContain("what to do: call the method the function serves: --method package.Service/Method with a --proto that defines it");

    // The image's own method and proto, given on the command line (a relative path: the CLI sends it absolute).
    const right = await cli("deploy", fn, "--image", image.id, "--start", "boot", "--keepalive", "5m", "--method", "wordcount.WordCount/Count", "--proto", `${EXAMPLE}/wordcount.proto`, "--json");
    expect(right.code, right.stderr).toBe(0);
    expect(JSON.parse(right.stdout)).toMatchObject({ method: "wordcount.WordCount/Count", protoPath: packagePath(EXAMPLE, "wordcount.proto"), imageId: image.id });
    const { data, reply } = await readmeExample();
    const answered = await cli("invoke", fn, "--data", data);
    expect(answered.code, answered.stderr).toBe(0);
    expect(answered.stdout.split("\n")[0]).toBe(reply);

    // A warm call given 1 ms: ERR_INVOKE_TIMEOUT naming it; the instance lives on.
    const late = await cli("invoke", fn, "--data", data, "--timeout", "1ms");
    expect(late.code).toBe(1);
    expect(late.stderr).toContain("error [ERR_INVOKE_TIMEOUT]: wordcount.WordCount/Count did not answer within 1 ms (the invocation timeout, --timeout)");
    // Data that cannot be a request: refused before the pool, no new instance.
    const bad = await cli("invoke", fn, "--data", "hello");
    expect(bad.stderr).toContain("error [ERR_VALIDATION]: --data must be a JSON object for wordcount.CountRequest");
    const after = JSON.parse((await cli("invoke", fn, "--data", data, "--json")).stdout);
    expect(after).toMatchObject({ start: "warm", text: reply.replace(/^reply: /, "") });
  });
});
