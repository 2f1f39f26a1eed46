/**
 * The names a node knows vhive's runtime by. containerd derives a runtime's shim binary from its
 * type (runtime/v2/shim BinaryName: io.containerd.<name>.<version> is containerd-shim-<name>-<version>)
 * and runs it from its PATH; the CRI plugin registers the runtime under a handler name, which a
 * Kubernetes RuntimeClass names (deploy/kubernetes/ keeps the node's config and the RuntimeClass).
 */
export const RUNTIME_TYPE = "io.containerd.vhive.v2";
export const SHIM_BINARY = "containerd-shim-vhive-v2";
export const RUNTIME_HANDLER = "vhive";
