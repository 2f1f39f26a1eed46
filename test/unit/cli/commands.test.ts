/** The commands' options as a user meets them: each builder run through yargs, and its --help. */
import yargs from "yargs";
import { describe, expect, it } from "vitest";
import type { AnyCommand } from "../../../src/cli/command.js";
import { benchBootVsRestoreCommand } from "../../../src/cli/commands/bench-boot-vs-restore.js";
import { benchColdstartCommand } from "../../../src/cli/commands/bench-coldstart.js";
import { benchConcurrencyCommand } from "../../../src/cli/commands/bench-concurrency.js";
import { benchLoadCommand } from "../../../src/cli/commands/bench-load.js";
import { benchReapCommand } from "../../../src/cli/commands/bench-reap.js";
import { benchReuseCommand } from "../../../src/cli/commands/bench-reuse.js";
import { demoCommand } from "../../../src/cli/commands/demo.js";
import { deployCommand } from "../../../src/cli/commands/deploy.js";
import { invokeCommand } from "../../../src/cli/commands/invoke.js";
import { runCommand } from "../../../src/cli/commands/run.js";
import { snapshotCreateCommand } from "../../../src/cli/commands/snapshot-create.js";
import { snapshotRestoreCommand } from "../../../src/cli/commands/snapshot-restore.js";
import { invokeTimeoutOf } from "../../../src/cli/function-options.js";
import { isVhiveError } from "../../../src/shared/errors.js";

interface Built {
  getOptions(): { key: Record<string, boolean>; default: Record<string, unknown> };
  getHelp(): Promise<string>;
}

function built(command: AnyCommand): Built {
  return command.builder(yargs([]) as never) as unknown as Built;
}

/** The --help text of a command, one line per option (yargs wraps long descriptions). */
async function helpOf(command: AnyCommand): Promise<string> {
  return (await built(command).getHelp()).replace(/\n {10,}/g, " ").replace(/ {2,}/g, " ");
}

describe("vhive run --help", () => {
  it("says the default --data is the recipe's first input", async () => {
    const help = await helpOf(runCommand);
    expect(help).toContain("(default: the recipe's first input; without inputs, \"world\" for gRPC and a GET for HTTP)");
    expect(help).not.toContain('string field (default "world")');
  });
});

describe("--timeout", () => {
  const startsAndInvokes = { runCommand, snapshotCreateCommand, snapshotRestoreCommand, benchBootVsRestoreCommand, benchColdstartCommand, benchConcurrencyCommand, benchReapCommand, benchReuseCommand, demoCommand };

  it.each(Object.entries(startsAndInvokes))("%s takes --timeout, 30 s by default", (_name, command) => {
    const options = built(command).getOptions();
    expect(options.key.timeout).toBe(true);
    expect(options.default.timeout).toBe("30s");
  });

  it("deploy, invoke and bench load take --timeout; help says the daemon's defaults", async () => {
    expect(await helpOf(deployCommand)).toMatch(/--timeout how long one invocation may take before ERR_INVOKE_TIMEOUT, e\.g\. 2m \(default 60s\)/);
    expect(await helpOf(invokeCommand)).toMatch(/--timeout how long this invocation may take .*\(default: the function's, set by vhive deploy --timeout\)/);
    expect(built(benchLoadCommand).getOptions().key.timeout).toBe(true);
  });

  it("is a duration as the other options take them, above 0", () => {
    expect(invokeTimeoutOf({ timeout: "2m" })).toBe(120_000);
    expect(invokeTimeoutOf({ timeout: "45" })).toBe(45_000);
    for (const bad of ["0", "soon", "-1s"]) {
      let code: string | undefined;
      try {
        invokeTimeoutOf({ timeout: bad });
      } catch (error) {
        code = isVhiveError(error) ? error.code : "not a VhiveError";
      }
      expect(code, bad).toBe("ERR_VALIDATION");
    }
  });
});
