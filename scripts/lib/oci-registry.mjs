// A read-only OCI registry on a loopback port, serving the images of OCI image archives (as
// scripts/lib/cri-images.sh builds them) to pulls: the private containerd's CRI plugin uses it
// as the mirror of the registries those images are named after (ghcr.io, registry.k8s.io), so
// that a test that removes an image and pulls it again gets it back without the internet.
//
//   node oci-registry.mjs --work DIR ARCHIVE...
//
// Extracts the archives under DIR, listens on 127.0.0.1 (a port of the kernel's choosing), prints
// one line {"port":N,"images":["ghcr.io/containerd/busybox:1.28",...]} when ready, and serves
// until SIGTERM or SIGINT. It answers what a pull asks (distribution spec):
//   GET /v2/                                      200
//   HEAD|GET /v2/<repository>/manifests/<tag>     the image's manifest; containerd names the
//                                                 registry it mirrors in ?ns=<host>
//   HEAD|GET /v2/<repository>/manifests/<digest>  a manifest by digest
//   HEAD|GET /v2/<repository>/blobs/<digest>      a config or layer
// and 404 (or 405 for a push) to everything else.
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import * as tar from "tar";

const { values, positionals } = parseArgs({ options: { work: { type: "string" } }, allowPositionals: true, strict: true });
if (!values.work || positionals.length === 0) {
  console.error("usage: node oci-registry.mjs --work DIR ARCHIVE...");
  process.exit(2);
}

/** "host/repository:tag" -> descriptor of its manifest; digest -> file of that blob. */
const tags = new Map();
const blobs = new Map();
for (const archive of positionals) {
  const layout = join(values.work, basename(archive, ".tar"));
  await mkdir(layout, { recursive: true });
  await tar.x({ file: archive, cwd: layout });
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8"));
  for (const manifest of index.manifests) {
    const name = manifest.annotations?.["io.containerd.image.name"];
    if (name) tags.set(name, manifest);
  }
  for (const [digest, file] of await blobFiles(layout)) blobs.set(digest, file);
}

async function blobFiles(layout) {
  const dir = join(layout, "blobs", "sha256");
  return (await readdir(dir)).map((hex) => [`sha256:${hex}`, join(dir, hex)]);
}

/** The media type of a manifest blob, from its own mediaType field. */
async function mediaTypeOf(file) {
  return JSON.parse(await readFile(file, "utf8")).mediaType ?? "application/vnd.oci.image.manifest.v1+json";
}

const PATH = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/;

const server = createServer(async (request, response) => {
  const url = new URL(request.url ?? "/", "http://registry");
  const send = (status, headers = {}, file) => {
    response.writeHead(status, headers);
    if (file && request.method === "GET") createReadStream(file).pipe(response);
    else response.end();
  };
  if (request.method !== "GET" && request.method !== "HEAD") return send(405);
  if (url.pathname === "/v2/" || url.pathname === "/v2") return send(200, { "docker-distribution-api-version": "registry/2.0" });
  const match = PATH.exec(url.pathname);
  if (!match) return send(404);
  const [, repository, kind, reference] = match;
  let digest = reference;
  if (!reference.startsWith("sha256:")) {
    const host = url.searchParams.get("ns");
    const candidates = [...tags.entries()].filter(([name]) => (host ? name === `${host}/${repository}:${reference}` : name.endsWith(`/${repository}:${reference}`)));
    if (candidates.length !== 1 || kind !== "manifests") return send(404);
    digest = candidates[0][1].digest;
  }
  const file = blobs.get(digest);
  if (!file) return send(404);
  const headers = { "content-length": String((await stat(file)).size), "docker-content-digest": digest };
  headers["content-type"] = kind === "manifests" ? await mediaTypeOf(file) : "application/octet-stream";
  send(200, headers, file);
});

server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.address().port, images: [...tags.keys()].sort() }));
});
// containerd keeps its connections open: close them, or close() would wait for them.
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
