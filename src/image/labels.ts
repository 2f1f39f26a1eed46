/**
 * What vhive needs to call a function and the OCI image config has no field for, carried as
 * image config labels (config.Labels) by `vhive image export` and read back by `vhive image
 * import`. Entrypoint, Env, WorkingDir and the port (ExposedPorts) have OCI fields; these do not:
 *
 *   dev.vhive.schema        "1": the version of this set of labels
 *   dev.vhive.protocol      "grpc" | "http"
 *   dev.vhive.port          the exposed TCP port the function listens on, "50051"
 *   dev.vhive.grpc.method   "helloworld.Greeter/SayHello"
 *   dev.vhive.http.path     "/compute"
 *   dev.vhive.mem-mib       guest memory the function needs, MiB, "512"
 *   dev.vhive.inputs        the request data it accepts, a JSON array of strings, '["world","vhive"]'
 *   dev.vhive.proto.name    file name of the .proto clients load, "helloworld.proto"
 *   dev.vhive.proto         that file's text
 *
 * Only protocol, port and schema are always set; the rest only when the image has them. All
 * label values are strings, as OCI requires.
 */
import { z } from "zod";
import { VhiveError } from "../shared/errors.js";
import type { FunctionConfig } from "./config.js";

export const LABEL_PREFIX = "dev.vhive.";
export const LABELS = {
  schema: "dev.vhive.schema",
  protocol: "dev.vhive.protocol",
  port: "dev.vhive.port",
  method: "dev.vhive.grpc.method",
  httpPath: "dev.vhive.http.path",
  memMib: "dev.vhive.mem-mib",
  inputs: "dev.vhive.inputs",
  protoName: "dev.vhive.proto.name",
  proto: "dev.vhive.proto",
} as const;
const SCHEMA_VERSION = "1";

/** What the labels say, in FunctionConfig's terms; the .proto as its name and text. */
export interface LabelledConfig {
  protocol: FunctionConfig["protocol"];
  port: number;
  method?: string;
  httpPath?: string;
  memMib?: number;
  inputs?: string[];
  proto?: { name: string; text: string };
}

/** The labels for an image of `config`, whose .proto (if any) reads `protoText`. */
export function functionLabels(config: FunctionConfig, protoText: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.schema]: SCHEMA_VERSION,
    [LABELS.protocol]: config.protocol,
    [LABELS.port]: String(config.port),
  };
  if (config.method !== undefined) labels[LABELS.method] = config.method;
  if (config.httpPath !== undefined) labels[LABELS.httpPath] = config.httpPath;
  if (config.memMib !== undefined) labels[LABELS.memMib] = String(config.memMib);
  if (config.inputs !== undefined) labels[LABELS.inputs] = JSON.stringify(config.inputs);
  if (config.proto !== undefined && protoText !== undefined) {
    labels[LABELS.protoName] = config.proto;
    labels[LABELS.proto] = protoText;
  }
  return labels;
}

const decimal = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a decimal number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const inputsJson = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: "custom", message: "must be a JSON array of strings" });
    return z.NEVER;
  }
}).pipe(z.array(z.string("must be a JSON array of strings"), "must be a JSON array of strings").min(1, "must list at least one input"));

// The bounds match the recipe schema's (recipe.ts), so an exported image imports as it was built.
const VhiveLabels = z.strictObject({
  [LABELS.schema]: z.literal(SCHEMA_VERSION, `must be "${SCHEMA_VERSION}"; the image was exported by a vhive this one does not know`),
  [LABELS.protocol]: z.enum(["grpc", "http"]),
  [LABELS.port]: decimal(1, 65535),
  [LABELS.method]: z.string().regex(/^[\w.]+\/\w+$/, "expected package.Service/Method").optional(),
  [LABELS.httpPath]: z.string().startsWith("/", "must start with /").optional(),
  [LABELS.memMib]: decimal(64, 16384).optional(),
  [LABELS.inputs]: inputsJson.optional(),
  // Becomes a file name in the image store: a bare name, never a path.
  [LABELS.protoName]: z
    .string()
    .refine((name) => /^[\w.-]+$/.test(name) && name !== "." && name !== "..", "must be a bare file name")
    .optional(),
  [LABELS.proto]: z.string().optional(),
});

/**
 * Reads the dev.vhive.* labels of an image config; undefined if it has none (an image vhive did
 * not export). Throws ERR_IMAGE_INVALID naming the label that is wrong or unknown.
 */
export function readFunctionLabels(labels: Record<string, string>, where: string): LabelledConfig | undefined {
  const ours = Object.fromEntries(Object.entries(labels).filter(([key]) => key.startsWith(LABEL_PREFIX)));
  if (Object.keys(ours).length === 0) return undefined;
  const parsed = VhiveLabels.safeParse(ours);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      issue.code === "unrecognized_keys" ? `unknown label${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}` : `label ${String(issue.path[0] ?? "")}: ${issue.message}`,
    );
    throw new VhiveError("ERR_IMAGE_INVALID", `${where} has vhive labels that cannot be read: ${problems.join("; ")}`, {
      remedy: "Re-export the image with `vhive image export`, or remove the dev.vhive.* labels and pass --port and --protocol.",
    });
  }
  const values = parsed.data;
  const protoName = values[LABELS.protoName];
  const protoText = values[LABELS.proto];
  if ((protoName === undefined) !== (protoText === undefined)) {
    throw new VhiveError("ERR_IMAGE_INVALID", `${where} has only one of the labels ${LABELS.protoName} and ${LABELS.proto}; they come together`, {
      remedy: "Re-export the image with `vhive image export`, or pass --proto FILE.",
    });
  }
  return {
    protocol: values[LABELS.protocol],
    port: values[LABELS.port],
    method: values[LABELS.method],
    httpPath: values[LABELS.httpPath],
    memMib: values[LABELS.memMib],
    inputs: values[LABELS.inputs],
    proto: protoName !== undefined && protoText !== undefined ? { name: protoName, text: protoText } : undefined,
  };
}
