import { randomInt } from "node:crypto";
import { resolve } from "node:path";
import { fmtPct } from "../../bench/index.js";
import { invocationShares, parseSynthOptions, synthesizeTrace, type ArrivalPattern } from "../../bench/trace/synth.js";
import { writeAzureTrace } from "../../bench/trace/write.js";
import { defineCommand } from "../command.js";
import { withProgress } from "../progress.js";

export const benchTraceSynthCommand = defineCommand({
  command: "trace-synth",
  describe: "write a synthetic day in the Azure Functions trace 2019's format (modelled on the paper's figures, not the real trace) for vhive bench trace",
  builder: (yargs) =>
    yargs
      .option("out", { type: "string", demandOption: true, describe: "directory for the day's three CSV files (created; existing trace files are never overwritten)" })
      .option("functions", { type: "number", default: 200, describe: "functions to write (each invoked at least once in the period)" })
      .option("day", { type: "number", default: 1, describe: "which day's file names to write (1..14)" })
      .option("seed", { type: "number", describe: "seed of every draw (default: random, printed)" })
      .option("minutes", { type: "number", default: 1440, describe: "minutes of the day that carry invocations, from its start (the rest of the 1440 columns are 0)" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object: the options, the files and the shape of what was written" }),
  run: async (args, context) => {
    const options = parseSynthOptions({ functions: args.functions, day: args.day, seed: args.seed ?? randomInt(2 ** 31), minutes: args.minutes });
    const out = resolve(args.out);
    const seen: { app: string; invocations: number }[] = [];
    const patterns: Record<ArrivalPattern, number> = { timer: 0, poisson: 0, bursty: 0 };
    function* observed() {
      for (const fn of synthesizeTrace(options)) {
        seen.push({ app: fn.app, invocations: fn.counts.reduce((a, b) => a + b, 0) });
        patterns[fn.pattern]++;
        yield fn;
      }
    }
    const written = await withProgress(`writing ${options.functions} synthetic functions`, context.log, () => writeAzureTrace(out, options.day, observed()));
    const shares = invocationShares(seen, options.minutes);
    const invocations = seen.reduce((sum, f) => sum + f.invocations, 0);
    if (args.json) {
      context.printJson({ synthetic: true, ...options, out, files: written.files, apps: written.apps, invocations, patterns, shares });
      return;
    }
    context.print(
      [
        `wrote a SYNTHETIC trace (drawn from distributions modelled on Shahrad et al., ATC'20; not the Azure trace): ${written.functions} functions of ${written.apps} apps, ${invocations} invocations in ${options.minutes} min, day ${options.day}, seed ${options.seed}`,
        ...written.files.map((file) => `  ${file}`),
        `arrivals: ${patterns.timer} timers, ${patterns.poisson} poisson, ${patterns.bursty} bursty`,
        `invoked at most once an hour: ${fmtPct(shares.functionsHourly)} of functions, ${fmtPct(shares.appsHourly)} of apps (the paper: 45% of apps)`,
        `invoked at most once a minute: ${fmtPct(shares.functionsMinutely)} of functions, ${fmtPct(shares.appsMinutely)} of apps (the paper: 81% of apps)`,
        `replay it: vhive bench trace --trace ${out} --day ${options.day} ...`,
      ].join("\n"),
    );
  },
});
