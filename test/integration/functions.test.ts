/**
 * The function suite (functions/<name>, the paper's ten functions): each image is built from its
 * recipe, booted once in a microVM, and called with each of its inputs on that instance; the
 * replies are deterministic summaries, checked for content. Every function but helloworld must
 * refuse an input it does not have with INVALID_ARGUMENT.
 *
 * VHIVE_SUITE picks the functions: unset, the CI set (CI_SUITE below); "all", every function;
 * or a comma-separated list of names. The others are reported as skipped.
 * VHIVE_SUITE_MEASURE=1 also times each input on the booted instance (2 warm-up calls, then the
 * median of 10) and prints it: the README's warm latencies.
 */
import { afterEach, describe, expect, it } from "vitest";
import { median } from "../../src/bench/index.js";
import { buildImage } from "../../src/image/index.js";
import { bootInstance, type Instance } from "../../src/start/index.js";
import { StatePaths } from "../../src/shared/paths.js";
import { expectNothingLeft, stateDir, testHost } from "./harness.js";

/** A reply is checked against the exact text, a pattern, or a function that runs expect()s. */
type ReplyCheck = string | RegExp | ((reply: string) => void);

interface SuiteFunction {
  name: string;
  /** Request data (the selector) -> what the reply must be. */
  inputs: Record<string, ReplyCheck>;
  /** helloworld greets any name; the others refuse a selector they do not have. */
  refusesUnknownInput: boolean;
}

/** The number after `label` in a reply, e.g. "mean grey 134.9" -> 134.9. */
function numberAfter(reply: string, label: string): number {
  const match = new RegExp(`${label} (\\d+(?:\\.\\d+)?)`).exec(reply);
  expect(match, `"${label} <number>" in ${JSON.stringify(reply)}`).not.toBeNull();
  return Number(match![1]);
}

/** `pattern` must match the reply, and the number after `label` lie within `tolerance` of `near`. */
function matchesNear(pattern: RegExp, label: string, near: number, tolerance: number): (reply: string) => void {
  return (reply) => {
    expect(reply).toMatch(pattern);
    expect(Math.abs(numberAfter(reply, label) - near)).toBeLessThanOrEqual(tolerance);
  };
}

/** One generated name per start letter, each starting with its letter. */
function namesFrom(letters: string): RegExp {
  const names = [...letters].map((letter) => `${letter}[a-z]*`).join(",");
  return new RegExp(`^generated ${letters.length} names from '${letters}': ${names}$`);
}

const SUITE: SuiteFunction[] = [
  {
    name: "helloworld",
    inputs: { world: "Hello, world!", vhive: "Hello, vhive!" },
    refusesUnknownInput: false,
  },
  {
    name: "chameleon",
    inputs: {
      small: "rendered small table: 100x10, 47939 bytes of HTML, sha256 43336bc21644",
      large: "rendered large table: 400x20, 394239 bytes of HTML, sha256 ac070475c5d7",
    },
    refusesUnknownInput: true,
  },
  {
    name: "pyaes",
    inputs: {
      small: "pyaes small: 10 rounds of AES-256-CTR on 1024 bytes, ciphertext sha256 59345614fd63, decrypted ok",
      large: "pyaes large: 10 rounds of AES-256-CTR on 4096 bytes, ciphertext sha256 e539d16a4596, decrypted ok",
    },
    refusesUnknownInput: true,
  },
  {
    name: "image_rotate",
    inputs: {
      // Pixel means, not hashes: JPEG bytes may change with a Pillow or libjpeg update.
      A: matchesNear(/^rotated image A: 512x512 -> 512x512, mean grey [\d.]+, jpeg \d+ bytes, sha256 [0-9a-f]{12}$/, "mean grey", 134.9, 0.5),
      B: matchesNear(/^rotated image B: 768x512 -> 512x768, mean grey [\d.]+, jpeg \d+ bytes, sha256 [0-9a-f]{12}$/, "mean grey", 131.8, 0.5),
    },
    refusesUnknownInput: true,
  },
  {
    name: "json_serdes",
    inputs: {
      A: "json A: parsed 2391636 bytes (10000 entries), re-serialised 2391636 bytes, sha256 5d86e492e5c0",
      B: "json B: parsed 3055421 bytes (7000 entries), re-serialised 3055421 bytes, sha256 eee4d1fab9aa",
    },
    refusesUnknownInput: true,
  },
  {
    name: "lr_serving",
    inputs: {
      A: "classified 4 texts: pos,neg,pos,neg",
      // The synthetic reviews carry one sentiment word in five from the wrong side.
      B: (reply) => {
        const counts = /^classified 200 texts: (\d+) pos, (\d+) neg \((\d+) as labelled\)$/.exec(reply);
        expect(counts, reply).not.toBeNull();
        const [, positive, negative, agreeing] = counts!.map(Number);
        expect(positive! + negative!).toBe(200);
        expect(agreeing).toBeGreaterThanOrEqual(160);
      },
    },
    refusesUnknownInput: true,
  },
  {
    name: "cnn_serving",
    inputs: {
      // The pictures' true classes, in order (the generator names each file after its class).
      A: "classified image batch A (8 images, 64x64): square,triangle,square,circle,cross,triangle,circle,cross",
      B: "classified image batch B (8 images, 64x64): triangle,circle,circle,square,cross,cross,square,triangle",
    },
    refusesUnknownInput: true,
  },
  {
    name: "rnn_serving",
    // The names depend on weights trained at build time on the build host's CPU: check their form.
    inputs: { A: namesFrom("abc"), B: namesFrom("klmnoprstv") },
    refusesUnknownInput: true,
  },
  {
    name: "lr_training",
    inputs: {
      small: matchesNear(/^trained on 2000 samples, tested on 500: accuracy 0\.\d{3}, model \d+ bytes$/, "accuracy", 0.9, 0.05),
      large: matchesNear(/^trained on 8000 samples, tested on 2000: accuracy 0\.\d{3}, model \d+ bytes$/, "accuracy", 0.9, 0.05),
    },
    refusesUnknownInput: true,
  },
  {
    name: "video_processing",
    inputs: {
      A: matchesNear(/^processed video A: 45 frames 320x240 -> greyscale XVID, \d+ bytes, mean luma [\d.]+$/, "mean luma", 106.3, 0.5),
      B: matchesNear(/^processed video B: 30 frames 480x360 -> greyscale XVID, \d+ bytes, mean luma [\d.]+$/, "mean luma", 115.0, 0.5),
    },
    refusesUnknownInput: true,
  },
];

/**
 * What CI runs by default: every function, since the whole file takes ~13 minutes from an empty
 * state directory (README, "Function suite"). A smaller set must keep helloworld, json_serdes
 * and image_rotate.
 */
const CI_SUITE = SUITE.map((fn) => fn.name);

function selectedNames(setting: string | undefined): Set<string> {
  if (setting === undefined || setting === "") return new Set(CI_SUITE);
  if (setting === "all") return new Set(SUITE.map((fn) => fn.name));
  const names = setting.split(",").map((name) => name.trim());
  const unknown = names.filter((name) => !SUITE.some((fn) => fn.name === name));
  if (unknown.length > 0) {
    throw new Error(`VHIVE_SUITE names ${unknown.join(", ")}, not in the suite (${SUITE.map((fn) => fn.name).join(", ")}); or use "all"`);
  }
  return new Set(names);
}

const selected = selectedNames(process.env.VHIVE_SUITE);
const measure = process.env.VHIVE_SUITE_MEASURE === "1";

/** A first call under TCG may run far longer than a warm one (imports, page faults). */
const INVOKE_TIMEOUT_MS = 120_000;
/** Building the biggest images (PyTorch, ~1 GB) takes minutes; booting them half a minute. */
const FUNCTION_TEST_TIMEOUT_MS = 900_000;
const WARMUP_CALLS = 2;
const TIMED_CALLS = 10;

function expectReply(reply: string, check: ReplyCheck): void {
  if (typeof check === "string") expect(reply).toBe(check);
  else if (check instanceof RegExp) expect(reply).toMatch(check);
  else check(reply);
}

async function medianCallMs(instance: Instance, data: string): Promise<number> {
  for (let i = 0; i < WARMUP_CALLS; i++) await instance.invoke(data, { timeoutMs: INVOKE_TIMEOUT_MS });
  const times: number[] = [];
  for (let i = 0; i < TIMED_CALLS; i++) times.push((await instance.invoke(data, { timeoutMs: INVOKE_TIMEOUT_MS })).ms);
  return median(times);
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

describe("the function suite", () => {
  afterEach(expectNothingLeft);

  for (const fn of SUITE) {
    const inputs = Object.keys(fn.inputs);
    const title =
      `${fn.name} answers ${inputs.map((input) => JSON.stringify(input)).join(" and ")} with checkable summaries on one instance` +
      (fn.refusesUnknownInput ? " and refuses an unknown input with INVALID_ARGUMENT" : "");

    it.skipIf(!selected.has(fn.name))(
      title,
      async () => {
        const buildStarted = performance.now();
        const image = await buildImage(new StatePaths(stateDir()), `functions/${fn.name}`);
        const buildMs = performance.now() - buildStarted;
        // The recipe declares the inputs tested here (its first is the default request data).
        expect(image.config.inputs).toEqual(inputs);

        await using instance = await bootInstance(await testHost(), image);
        const replies = new Map<string, string>();
        const log: string[] = [];
        for (const [data, check] of Object.entries(fn.inputs)) {
          const reply = await instance.invoke(data, { timeoutMs: INVOKE_TIMEOUT_MS });
          expectReply(reply.text, check);
          replies.set(data, reply.text);
          log.push(`${data}: ${reply.text} (${Math.round(reply.ms)} ms)`);
        }

        if (fn.refusesUnknownInput) {
          await expect(instance.invoke("no-such-input", { timeoutMs: INVOKE_TIMEOUT_MS })).rejects.toMatchObject({
            code: "ERR_INVOKE",
            message: expect.stringMatching(/INVALID_ARGUMENT: \w+: unknown input 'no-such-input'; the request's name must be one of/),
          });
        }
        // The same input again gives the same summary: nothing carries over between calls.
        const first = inputs[0]!;
        expect((await instance.invoke(first, { timeoutMs: INVOKE_TIMEOUT_MS })).text).toBe(replies.get(first));

        console.log(
          `${fn.name}: image ready in ${seconds(buildMs)} (${(image.bytes / 2 ** 20).toFixed(0)} MiB), ` +
            `booted in ${seconds(instance.start.times.bootMs)}\n  ${log.join("\n  ")}`,
        );
        if (measure) {
          for (const data of inputs) {
            console.log(`${fn.name} ${data}: warm median ${(await medianCallMs(instance, data)).toFixed(1)} ms (${WARMUP_CALLS} warm-up, ${TIMED_CALLS} timed calls)`);
          }
        }
      },
      FUNCTION_TEST_TIMEOUT_MS,
    );
  }
});
