/**
 * Image recipes: a directory with recipe.json describing a Debian-based function image.
 *
 *   { "name": "helloworld", "packages": ["python3-minimal", ...],
 *     "files": [{ "src": "server.py", "dest": "/app/server.py" }],
 *     "build": ["cd /app && python3 -m grpc_tools.protoc ..."],
 *     "entrypoint": ["python3", "/app/server.py"], "env": {}, "workdir": "/app",
 *     "port": 50051, "protocol": "grpc", "proto": "helloworld.proto",
 *     "method": "helloworld.Greeter/SayHello" }
 *
 * `files` are copied in before `build` commands run (in a chroot of the image, at build time:
 * generating inputs, training models); a `src` may be a file or a directory, copied whole with
 * its modes (recipe-files.ts). Paths are relative to the recipe directory (the suite's recipes
 * share ../../protos/helloworld.proto). `proto` is the file clients use to call the function.
 */
import { readFile, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { digestBytes } from "../shared/digest.js";
import { VhiveError } from "../shared/errors.js";
import { digestSource } from "./recipe-files.js";

const packageName = z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, "not a Debian package name");

export const RecipeSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, "lower-case letters, digits, '_', '.', '-'"),
  suite: z.string().optional(),
  packages: z.array(packageName).default([]),
  files: z.array(z.strictObject({ src: z.string().min(1), dest: z.string().startsWith("/") })).default([]),
  build: z.array(z.string().min(1)).default([]),
  entrypoint: z.array(z.string()).min(1),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
  workdir: z.string().startsWith("/").default("/"),
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(["grpc", "http"]),
  proto: z.string().optional(),
  method: z.string().regex(/^[\w.]+\/\w+$/, "expected package.Service/Method").optional(),
  httpPath: z.string().startsWith("/").optional(),
  /** Guest memory the function needs, MiB (default 256). */
  memMib: z.number().int().min(64).max(16384).optional(),
  /** Request data the function accepts (input selectors); the first is the default. */
  inputs: z.array(z.string()).min(1).optional(),
});

export type Recipe = z.infer<typeof RecipeSchema>;

export interface LoadedRecipe {
  dir: string;
  recipe: Recipe;
  /** Content address of the recipe and every file it copies in. */
  digest: string;
}

export const RECIPE_FILE = "recipe.json";

export async function loadRecipe(dirArg: string): Promise<LoadedRecipe> {
  const dir = resolve(dirArg);
  const path = join(dir, RECIPE_FILE);
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new VhiveError("ERR_RECIPE_INVALID", `cannot read ${path}: ${error.code ?? error.message}`, {
      remedy: `a recipe is a directory with a ${RECIPE_FILE}; see functions/helloworld for an example`,
    });
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new VhiveError("ERR_RECIPE_INVALID", `${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = RecipeSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(top)"}: ${issue.message}`);
    throw new VhiveError("ERR_RECIPE_INVALID", `${path} is invalid: ${problems.join("; ")}`);
  }
  const recipe = parsed.data;
  const parts: (string | Buffer)[] = [JSON.stringify(recipe)];
  const sources = [...recipe.files.map((file) => file.src), ...(recipe.proto ? [recipe.proto] : [])];
  for (const src of sources) {
    if (isAbsolute(src)) {
      throw new VhiveError("ERR_RECIPE_INVALID", `${path}: file ${src} must be a path relative to the recipe directory`);
    }
    parts.push(...(await digestSource(dir, src, path)));
  }
  if (recipe.proto) {
    const info = await stat(join(dir, recipe.proto));
    if (!info.isFile()) throw new VhiveError("ERR_RECIPE_INVALID", `${path}: proto ${recipe.proto} must be a file, not a directory`);
  }
  return { dir, recipe, digest: digestBytes(parts) };
}
