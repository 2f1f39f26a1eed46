/**
 * Once per integration run: build dist/ (CLI tests run the real binary), make a temporary state
 * directory, prepare the guest and build the helloworld image into it. Set VHIVE_TEST_STATE to
 * reuse a state directory between local runs (it is then kept).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildImage } from "../../src/image/index.js";
import { StatePaths } from "../../src/shared/paths.js";

declare module "vitest" {
  export interface ProvidedContext {
    stateDir: string;
    helloworldId: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
  const keep = process.env.VHIVE_TEST_STATE;
  const stateDir = keep ?? (await mkdtemp(join(tmpdir(), "vhive-test-state-")));
  const started = performance.now();
  const image = await buildImage(new StatePaths(stateDir), "functions/helloworld");
  console.log(`helloworld image ${image.id.slice(0, 12)} ready in ${((performance.now() - started) / 1000).toFixed(1)} s (state ${stateDir})`);
  project.provide("stateDir", stateDir);
  project.provide("helloworldId", image.id);
  return async () => {
    if (!keep) await rm(stateDir, { recursive: true, force: true });
  };
}
