/**
 * deploy/kubernetes/ against the code it configures, so that it cannot rot: every file parses
 * (YAML, TOML); the containerd snippet registers the runtime type, handler and annotations the
 * shim knows and leaves runc the default; the RuntimeClass names that handler; the Pod,
 * Deployment and Knative Service run the suite's helloworld as vhive's pod model reads them
 * (the annotations parse as the shim parses a spec, the function container is the one the
 * shim picks, the image is the name `vhive image export` gives); the Knative patches set the
 * flags the README names.
 */
import { readdir, readFile } from "node:fs/promises";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CRI_ANNOTATIONS } from "../../../src/containerd/shim/bundle.js";
import { RUNTIME_HANDLER, RUNTIME_TYPE, SHIM_BINARY } from "../../../src/containerd/shim/names.js";
import { FUNCTION_CONTAINER_ANNOTATION, podRole } from "../../../src/containerd/shim/pod.js";
import { ANNOTATIONS, parseContainerSpec, START_POLICIES } from "../../../src/containerd/shim/spec.js";
import { LOCAL_DOMAIN, parseImageReference } from "../../../src/image/reference.js";
import { packagePath } from "../../../src/shared/package-root.js";
import { DEFAULT_MEM_MIB } from "../../../src/start/index.js";

const DIR = packagePath("deploy", "kubernetes");
const read = (...path: string[]) => readFile(packagePath(...path), "utf8");

type Doc = Record<string, any>;

/** Every YAML document of a file; a YAML error fails the test with its message. */
async function yamlDocs(file: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await readFile(`${DIR}/${file}`, "utf8"));
  if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
  for (const doc of docs) expect(doc.errors.map((error) => error.message), file).toEqual([]);
  return docs.map((doc) => doc.toJS() as Doc);
}

const allVhiveAnnotations: string[] = [...Object.values(ANNOTATIONS), FUNCTION_CONTAINER_ANNOTATION];

/**
 * Go's path.Match, which containerd matches pod_annotations with (pkg/cri/server/helpers.go
 * getPassthroughAnnotations): `*` is any run of characters but '/', `?` one such character.
 * Character classes and escapes are refused, so a pattern this cannot read fails the test.
 */
function goPathMatch(pattern: string, key: string): boolean {
  if (/[[\\]/.test(pattern)) throw new Error(`pattern ${pattern}: classes and escapes are not checked here`);
  const regex = pattern.replace(/[.+^${}()|]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]");
  return new RegExp(`^${regex}$`).test(key);
}

/** containerd's runtime/v2/shim BinaryName: io.containerd.<name>.<version> runs containerd-shim-<name>-<version>. */
function shimBinaryOf(runtimeType: string): string {
  const parts = runtimeType.split(".");
  return `containerd-shim-${parts.at(-2)}-${parts.at(-1)}`;
}

/** 256Mi, 1Gi, 268435456: bytes, as Kubernetes reads a memory quantity. */
function bytesOf(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity);
  if (!match) throw new Error(`memory quantity ${quantity}: not checked here`);
  return Number(match[1]) * { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, "": 1 }[match[2] ?? ""]!;
}

describe("deploy/kubernetes", () => {
  it("holds only YAML and TOML files, and each parses", async () => {
    const files = (await readdir(DIR)).sort();
    expect(files).toEqual(["containerd-config.toml", "containerd2-config.toml", "deployment.yaml", "knative-config-deployment.patch.yaml", "knative-config-features.patch.yaml", "knative-service.yaml", "pod.yaml", "runtimeclass.yaml"]);
    for (const file of files) {
      if (file.endsWith(".toml")) parseToml(await readFile(`${DIR}/${file}`, "utf8")); // throws on a TOML error
      else expect((await yamlDocs(file)).length, file).toBeGreaterThan(0);
    }
  });

  it("the containerd snippet registers vhive's runtime type under its handler, passes vhive's annotations, and leaves runc as containerd's default", async () => {
    const config = parseToml(await readFile(`${DIR}/containerd-config.toml`, "utf8")) as Doc;
    const containerd = config.plugins["io.containerd.grpc.v1.cri"].containerd;
    expect(Object.keys(config)).toEqual(["plugins"]);
    expect(Object.keys(containerd)).toEqual(["runtimes"]); // no default_runtime_name: runc stays the default
    expect(Object.keys(containerd.runtimes).sort()).toEqual([RUNTIME_HANDLER, "runc"].sort());
    expect(containerd.runtimes.runc).toEqual({ runtime_type: "io.containerd.runc.v2" }); // containerd's built-in entry
    const vhive = containerd.runtimes[RUNTIME_HANDLER];
    expect(vhive.runtime_type).toBe(RUNTIME_TYPE);
    for (const list of ["pod_annotations", "container_annotations"] as const) {
      for (const key of allVhiveAnnotations) expect(vhive[list].some((pattern: string) => goPathMatch(pattern, key)), `${list} lets ${key} through`).toBe(true);
      // Only vhive's: a node's other annotations stay away from the shim.
      for (const key of ["io.kubernetes.pod.namespace", "autoscaling.knative.dev/min-scale", "example.com/x"]) expect(vhive[list].some((pattern: string) => goPathMatch(pattern, key)), key).toBe(false);
    }
  });

  it("the containerd 2 snippet registers the same runtime, with the same annotations, in containerd 2's CRI runtime table", async () => {
    const config = parseToml(await readFile(`${DIR}/containerd2-config.toml`, "utf8")) as Doc;
    const v1 = (parseToml(await readFile(`${DIR}/containerd-config.toml`, "utf8")) as Doc).plugins["io.containerd.grpc.v1.cri"].containerd.runtimes[RUNTIME_HANDLER];
    expect(Object.keys(config)).toEqual(["plugins"]);
    expect(Object.keys(config.plugins)).toEqual(["io.containerd.cri.v1.runtime"]);
    const containerd = config.plugins["io.containerd.cri.v1.runtime"].containerd;
    // Only vhive's table: containerd 2 keeps its built-in runc beside it, and runc stays the default.
    expect(Object.keys(containerd)).toEqual(["runtimes"]);
    expect(containerd.runtimes).toEqual({ [RUNTIME_HANDLER]: v1 });
  });

  it("containerd runs that runtime type as the shim vhive installs", async () => {
    expect(shimBinaryOf(RUNTIME_TYPE)).toBe(SHIM_BINARY);
    expect(JSON.parse(await read("package.json")).bin[SHIM_BINARY]).toBe("dist/shim/main.js");
    expect(await read("scripts", "setup.sh")).toContain(`shim=/usr/local/bin/${SHIM_BINARY}`);
    // The private node the tests run registers the same handler and type.
    const template = (await read("scripts", "lib", "containerd-vhive.toml.in")).replace(/"@[A-Z_]+@"/g, '"x"').replace(/@[A-Z_]+@/g, "false");
    const runtimes = (parseToml(template) as Doc).plugins["io.containerd.grpc.v1.cri"].containerd.runtimes;
    expect(runtimes[RUNTIME_HANDLER].runtime_type).toBe(RUNTIME_TYPE);
  });

  it("the RuntimeClass is named for the handler and schedules onto labelled nodes", async () => {
    const [runtimeClass] = await yamlDocs("runtimeclass.yaml");
    expect(runtimeClass).toMatchObject({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: RUNTIME_HANDLER }, handler: RUNTIME_HANDLER });
    expect(runtimeClass!.scheduling.nodeSelector).toEqual({ "dev.vhive/runtime": "true" });
  });

  /** A pod template: its annotations and spec, and the containers in the order the pod creates them. */
  async function podTemplates(): Promise<{ file: string; annotations: Record<string, string>; spec: Doc; containers: { name: string; doc?: Doc }[]; knative: boolean }[]> {
    const [pod] = await yamlDocs("pod.yaml");
    const [deployment, service] = await yamlDocs("deployment.yaml");
    const [ksvc] = await yamlDocs("knative-service.yaml");
    expect(pod).toMatchObject({ apiVersion: "v1", kind: "Pod" });
    expect(deployment).toMatchObject({ apiVersion: "apps/v1", kind: "Deployment" });
    expect(service).toMatchObject({ apiVersion: "v1", kind: "Service", spec: { selector: deployment!.spec.selector.matchLabels } });
    expect(ksvc).toMatchObject({ apiVersion: "serving.knative.dev/v1", kind: "Service" });
    const named = (spec: Doc) => spec.containers.map((doc: Doc) => ({ name: doc.name as string, doc }));
    return [
      { file: "pod.yaml", annotations: pod!.metadata.annotations ?? {}, spec: pod!.spec, containers: named(pod!.spec), knative: false },
      { file: "deployment.yaml", annotations: deployment!.spec.template.metadata.annotations ?? {}, spec: deployment!.spec.template.spec, containers: named(deployment!.spec.template.spec), knative: false },
      // Knative names an unnamed container user-container and appends its queue-proxy.
      {
        file: "knative-service.yaml",
        annotations: ksvc!.spec.template.metadata.annotations ?? {},
        spec: ksvc!.spec.template.spec,
        containers: [...ksvc!.spec.template.spec.containers.map((doc: Doc) => ({ name: doc.name ?? "user-container", doc })), { name: "queue-proxy" }],
        knative: true,
      },
    ];
  }

  it("the Pod, Deployment and Knative Service run helloworld on the RuntimeClass, with annotations the shim reads", async () => {
    const recipe = JSON.parse(await read("functions", "helloworld", "recipe.json"));
    for (const { file, annotations, spec, containers, knative } of await podTemplates()) {
      expect(spec.runtimeClassName, file).toBe(RUNTIME_HANDLER);
      // Service links would change the function's environment, its image and snapshot, as Services come and go.
      expect(spec.enableServiceLinks, file).toBe(false);
      for (const key of Object.keys(annotations).filter((key) => key.startsWith("dev.vhive."))) expect(allVhiveAnnotations, `${file}: ${key}`).toContain(key);
      if (annotations[ANNOTATIONS.start] !== undefined) expect(START_POLICIES, file).toContain(annotations[ANNOTATIONS.start]);
      // As the shim reads the function container's spec: the annotations are accepted.
      const parsed = parseContainerSpec({ process: { args: ["python3", "/app/server.py"] }, annotations }, "/bundle");
      expect(parsed.start, file).toBe(annotations[ANNOTATIONS.start] ?? "reap");

      // The pod model: the first container the pod creates is the function (and claims the
      // pod), every other one runc's.
      const fresh = { claimedBy: undefined, running: false };
      const claimed = { claimedBy: containers[0]!.name, running: true };
      const roles = containers.map((container, i) =>
        podRole({ ...annotations, [CRI_ANNOTATIONS.containerType]: "container", [CRI_ANNOTATIONS.containerName]: container.name }, i === 0 ? fresh : claimed),
      );
      expect(roles, file).toEqual(containers.map((_, i) => (i === 0 ? "function" : "runc")));
      expect(podRole({ ...annotations, [CRI_ANNOTATIONS.containerType]: "sandbox" }, fresh), file).toBe("runc");

      const fn = containers[0]!.doc!;
      expect(fn.image, file).toBe(parseImageReference(recipe.name).full); // what `vhive image export helloworld` names it
      expect(fn.image.startsWith(`${LOCAL_DOMAIN}/`)).toBe(true);
      expect(fn.imagePullPolicy, `${file}: an imported image, never pulled`).toBe("Never");
      expect(fn.ports.map((port: Doc) => port.containerPort), file).toEqual([recipe.port]);
      if (knative) expect(fn.ports[0].name, "Knative routes gRPC to a port named h2c").toBe("h2c");
      if (annotations[ANNOTATIONS.port] !== undefined) expect(Number(annotations[ANNOTATIONS.port]), file).toBe(recipe.port);
      const limit = fn.resources?.limits?.memory;
      if (limit !== undefined) expect(bytesOf(limit) / 1024 ** 2, `${file}: memory limit`).toBeGreaterThanOrEqual(recipe.memMib ?? DEFAULT_MEM_MIB);
    }
  });

  it("the Knative patches enable runtimeClassName and skip tag resolution for vhive.local, keeping Knative's defaults", async () => {
    const [features] = await yamlDocs("knative-config-features.patch.yaml");
    expect(features).toEqual({ data: { "kubernetes.podspec-runtimeclassname": "enabled" } });
    const [deployment] = await yamlDocs("knative-config-deployment.patch.yaml");
    expect(Object.keys(deployment!.data)).toEqual(["registries-skipping-tag-resolving"]);
    expect(deployment!.data["registries-skipping-tag-resolving"].split(",")).toEqual(["kind.local", "ko.local", "dev.local", LOCAL_DOMAIN]);
  });
});
