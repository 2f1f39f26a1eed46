/**
 * Restored clones do not share randomness: instances restored from one snapshot, in every
 * restore mode, one after another and several at once, and started by the daemon, answer
 * pairwise different os.urandom (the guest kernel's CRNG, reseeded by the guest agent with host
 * entropy), uuid4 (the same, through Python) and random.random() (Python's PRNG, reseeded by
 * the suite SDK's after-restore hook). Without the reseed every clone answers the same three.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startDaemon } from "../../src/daemon/index.js";
import { buildImage, type StoredImage } from "../../src/image/index.js";
import { NoOpLog } from "../../src/shared/log.js";
import { StatePaths } from "../../src/shared/paths.js";
import { SnapshotStore, type StoredSnapshot } from "../../src/snapshot/index.js";
import { createSnapshot, restoreOnce, RESTORE_MODES, type Host } from "../../src/start/index.js";
import { Cleanups } from "../unit/test-shared/cleanups.js";
import { api, removeSnapshotsOf, uniqueName, waitScaledToZero } from "./daemon-harness.js";
import { expectNothingLeft, stateDir, testHost } from "./harness.js";

interface Randomness {
  urandom: string;
  uuid4: string;
  random: number;
}

/** Every pair of answers differs in each of the three values. */
function expectPairwiseDifferent(answers: readonly { label: string; value: Randomness }[]): void {
  for (const key of ["urandom", "uuid4", "random"] as const) {
    const seen = new Map<string, string>();
    for (const { label, value } of answers) {
      const shown = String(value[key]);
      expect(seen.get(shown), `${key} ${shown} answered by both ${seen.get(shown)} and ${label}`).toBeUndefined();
      seen.set(shown, label);
    }
  }
}

const cleanups = new Cleanups();
let host: Host;
let image: StoredImage;
let snapshot: StoredSnapshot;

beforeAll(async () => {
  host = await testHost();
  image = await buildImage(new StatePaths(stateDir()), "test/fixtures/guest-probe");
  snapshot = await createSnapshot(host, image);
});
afterAll(() => new SnapshotStore(new StatePaths(stateDir())).remove(snapshot.meta.id));
afterEach(async () => {
  await cleanups.run();
  await expectNothingLeft();
});

describe("restored clones", () => {
  it("answer pairwise different randomness in every restore mode, one after another and two at once", async () => {
    const modes = RESTORE_MODES.filter((mode) => mode !== "reap");
    const answers: { label: string; value: Randomness }[] = [];
    for (const mode of modes) {
      // record first writes the working set that prefetch needs: RESTORE_MODES lists it before.
      const result = await restoreOnce(host, snapshot, "random", { mode });
      answers.push({ label: mode, value: JSON.parse(result.text) as Randomness });
    }
    for (const mode of modes.filter((m) => m !== "record")) {
      const pair = await Promise.all([0, 1].map(() => restoreOnce(host, snapshot, "random", { mode })));
      pair.forEach((result, i) => answers.push({ label: `${mode} at once #${i}`, value: JSON.parse(result.text) as Randomness }));
    }
    expect(answers).toHaveLength(modes.length + 2 * (modes.length - 1));
    expectPairwiseDifferent(answers);
  });

  it("started by the daemon (boot, record, prefetch, then two prefetches at once) answer pairwise different randomness", async () => {
    const fn = uniqueName("clones");
    cleanups.push(() => removeSnapshotsOf(fn));
    const daemon = await startDaemon({ stateDir: stateDir(), listen: "127.0.0.1:0", log: new NoOpLog(), memoryBudgetMib: 2048 });
    cleanups.push(() => daemon.close());
    const deployed = await api(daemon.url, "PUT", `/functions/${fn}`, { image: image.id, start: "reap", keepaliveMs: 2000, maxInstances: 2 });
    expect(deployed.status).toBe(201);
    const invoke = async () => {
      const { status, json } = await api(daemon.url, "POST", `/functions/${fn}/invoke`, { data: "random" });
      expect(status, JSON.stringify(json)).toBe(200);
      return { label: `${json.start} ${json.instance}`, start: json.start as string, value: JSON.parse(json.text) as Randomness };
    };
    const answers = [await invoke()];
    await waitScaledToZero(daemon.url, fn);
    answers.push(await invoke());
    await waitScaledToZero(daemon.url, fn);
    answers.push(await invoke());
    await waitScaledToZero(daemon.url, fn);
    answers.push(...(await Promise.all([invoke(), invoke()])));
    expect(answers.map((answer) => answer.start)).toEqual(["boot", "record", "prefetch", "prefetch", "prefetch"]);
    expectPairwiseDifferent(answers);
  });
});
