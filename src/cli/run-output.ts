/** How `vhive run` and `vhive demo` print a run. */
import { SHORT_ID_LENGTH } from "../image/index.js";
import { BOOT_PHASES, type BootPhase } from "../metrics/index.js";
import type { RunResult } from "../start/index.js";
import { formatMs, table } from "./format.js";

export function describeRun(result: RunResult): string {
  const phases = (Object.keys(BOOT_PHASES) as BootPhase[]).filter((phase) => phase !== "invokeMs");
  return [
    `reply: ${result.text}`,
    "",
    table([
      ["boot", formatMs(result.bootMs), `${result.image.name} ${result.image.id.slice(0, SHORT_ID_LENGTH)} under ${result.accel}`],
      ...phases.map((phase) => [`  ${phase}`, formatMs(result.breakdown[phase]), BOOT_PHASES[phase]]),
      ["invoke", formatMs(result.invokeMs), BOOT_PHASES.invokeMs],
    ]),
  ].join("\n");
}
