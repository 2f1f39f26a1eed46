export { BOOT_PHASES, RESTORE_PHASES, roundMs, type BootBreakdown, type BootPhase, type RestoreBreakdown, type RestorePhase } from "./phases.js";
