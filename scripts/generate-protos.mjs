// Generates the TypeScript message types of containerd's runtime v2 protocol from the .proto
// files Debian installs, into src/containerd/generated/, which is git-ignored. The one .proto
// kept in this repository is ttrpc's own request.proto, which Debian's ttrpc 1.1.1 lacks. `npm run build` and `npm run typecheck` run it before tsc. It uses Debian's protoc
// with ts-proto (a devDependency) as the plugin; the generated code needs @bufbuild/protobuf at
// run time.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";

const GOCODE = "/usr/share/gocode/src";
const CONTAINERD = `${GOCODE}/github.com/containerd/containerd`;

// Each include root, and the Debian package that provides it. protoc names a file by the first
// root that holds it, so the roots nested inside /usr/share/gocode/src come before it.
const includes = [
  // gogoproto/gogo.proto: Go code-generation options only; they do not change the wire format.
  { dir: `${GOCODE}/github.com/gogo/protobuf`, probe: "gogoproto/gogo.proto", pkg: "golang-github-gogo-protobuf-dev" },
  // google/rpc/status.proto and code.proto (Debian 12's only copies of them as .proto files).
  { dir: `${GOCODE}/github.com/gogo/googleapis`, probe: "google/rpc/status.proto", pkg: "golang-github-gogo-googleapis-dev" },
  // google/protobuf/{any,empty,timestamp,descriptor}.proto
  { dir: "/usr/include", probe: "google/protobuf/any.proto", pkg: "libprotobuf-dev" },
  // containerd's .proto files import one another as github.com/containerd/containerd/...
  { dir: GOCODE, probe: `${CONTAINERD}/runtime/v2/task/shim.proto`, pkg: "golang-github-containerd-containerd-dev" },
  // ttrpc's Request and Response: Debian's ttrpc 1.1.1 has no .proto for them (see the file).
  { dir: "src/containerd/protos", probe: "ttrpc/request.proto", pkg: null },
];

// The files to generate; their imports are generated with them.
const files = [
  `${CONTAINERD}/runtime/v2/task/shim.proto`,
  `${CONTAINERD}/api/events/task.proto`,
  `${CONTAINERD}/api/services/ttrpc/events/v1/events.proto`,
  "src/containerd/protos/ttrpc/request.proto",
  `${GOCODE}/github.com/gogo/googleapis/google/rpc/code.proto`,
];

const OUT = "src/containerd/generated";

// ts-proto options, each for a reason:
const options = [
  "esModuleInterop=true",
  "importSuffix=.js", // ESM under NodeNext resolution needs the extension
  "forceLong=number", // int64 here: timeouts in ns (2^53 ns is 104 days) and Timestamp seconds
  "outputJsonMethods=false", // ttrpc is binary protobuf only
  "outputServices=generic-definitions", // service descriptors the ttrpc server and client are typed by
  "outputTypeAnnotations=static-only", // Message.$type is the full name, for google.protobuf.Any
  "exportCommonSymbols=false", // helper types stay private to each file
  "useExactTypes=false", // fromPartial takes a plain partial object; simpler types for callers
];

function fail(message) {
  console.error(`generate-protos: ${message}`);
  process.exit(1);
}

let protoc;
try {
  protoc = execFileSync("sh", ["-c", "command -v protoc"], { encoding: "utf8" }).trim();
} catch {
  fail("protoc is not installed: run scripts/setup.sh as root (or apt-get install protobuf-compiler)");
}
for (const include of includes) {
  const probe = include.probe.startsWith("/") ? include.probe : join(include.dir, include.probe);
  if (!existsSync(probe)) {
    fail(`${probe} is missing: run scripts/setup.sh as root (or apt-get install ${include.pkg ?? "the vhive sources again"})`);
  }
}
const plugin = "node_modules/.bin/protoc-gen-ts_proto";
if (!existsSync(plugin)) fail(`${plugin} is missing: run npm ci`);

await rm(OUT, { recursive: true, force: true });
await mkdir(OUT, { recursive: true });
execFileSync(
  protoc,
  [
    `--plugin=protoc-gen-ts_proto=${plugin}`,
    `--ts_proto_out=${OUT}`,
    `--ts_proto_opt=${options.join(",")}`,
    ...includes.map((include) => `--proto_path=${include.dir}`),
    ...files,
  ],
  { stdio: "inherit" },
);
