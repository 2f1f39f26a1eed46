export { BOOT_PHASES, roundMs, type BootBreakdown, type BootPhase } from "./phases.js";
