/**
 * A spinner on stderr for long steps (image builds take tens of seconds). On a terminal it
 * shows the latest line of progress; elsewhere (CI, pipes) ora stays quiet and the step's
 * progress goes to the debug log instead.
 */
import ora from "ora";
import type { Log } from "../shared/log.js";

export async function withProgress<T>(title: string, log: Log, run: (update: (line: string) => void) => Promise<T>): Promise<T> {
  const spinner = ora({ text: title, stream: process.stderr }).start();
  const started = performance.now();
  const update = (line: string) => {
    spinner.text = `${title}: ${line.length > 100 ? line.slice(0, 97) + "..." : line}`;
    log.debug(line, { step: title });
  };
  try {
    const result = await run(update);
    spinner.succeed(`${title} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    return result;
  } catch (error) {
    spinner.fail(title);
    throw error;
  }
}
