/**
 * kubelet's side of containerd's CRI plugin, for vhive's scripts (scripts/cri-try.sh), the pod
 * benchmarks and the tests: a gRPC client over the CRI api.proto loaded at run time, and the
 * pod and container configs they send.
 */
export { connectCri, criProtoPath, CriError, type CriClient, type CriCallOptions, type CriMessage, type ImageMethod, type RuntimeMethod } from "./client.js";
export { containerConfig, podSandboxConfig, readCriLog, waitContainerExited, type ContainerOptions, type PodSandboxOptions } from "./config.js";
export { helloworldSidecarCommand, PodSet, type Pod, type PodSetOptions } from "./pods.js";
