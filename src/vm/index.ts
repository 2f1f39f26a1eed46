/** QEMU microVMs: command line, QMP, accelerator probe, boot, stop. */
export { MicroVm, GuestExitedError, type StartOptions, type VmTimeline } from "./microvm.js";
export { qemuArgs, kernelCommandLine, type Accel, type VmSpec, type PortForward } from "./cmdline.js";
export { QmpClient, type QmpEvent } from "./qmp.js";
export { SerialConsole, parseConsoleLine, type GuestEvent } from "./serial.js";
export { probeAccel, chooseAccel, type AccelProbe, type AccelRequest } from "./accel.js";
export { hostTscKhz, tscKhzFromCpuinfo, tscKhzFromKernelLog } from "./tsc.js";
export { qemuInfo, type QemuInfo } from "./qemu.js";
export { freeLoopbackPort, assertPortFree } from "./ports.js";
export { cpuBetween, processIo, parseMajorFaults, parseReadBytes, parseSchedstat, threadsCpu, type ProcessCpu, type ProcessIo, type ThreadsCpu } from "./procstat.js";
export { machineOf, deviceSignature, type GuestBoot, type GuestMemoryFile } from "./cmdline.js";
export { GuestAgent, RESTORE_ENTROPY_BYTES, type AgentRestoreReply } from "./agent.js";
export { procMemoryProbe, type MemoryProbe, type ProcessMemory, type GuestRamMemory, type HostMemory } from "./proc-memory.js";
