export { BOOT_PHASES, RESTORE_PHASES, roundMs, type BootBreakdown, type BootPhase, type RestorePhase } from "./phases.js";
