import { createHash } from "node:crypto";
import { access, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { recipeSynthesisOptions } from "../recipe/load.ts";
import type { Recipe } from "../recipe/schema.ts";
import { isDatasetName } from "./datasets.ts";
import { synthesizeTraceFile } from "./files.ts";
import { resolveTraceInput } from "./resolve-dataset.ts";

export interface RecipeTrace {
  /** The trace to replay: the recipe's source as is, or the cached synthesized trace. */
  file: string;
  /** True when a synthesized trace was found in the cache (nothing was synthesized). */
  cached: boolean;
  /** sha256 of the trace's content-defining inputs (source bytes, synthesis options, seed). */
  key: string;
}

/** Where synthesized traces are kept: `$XDG_CACHE_HOME/servelab/traces`, else `~/.cache/servelab/traces`. */
export function defaultTraceCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== "" ? env.XDG_CACHE_HOME : join(homedir(), ".cache");
  return join(base, "servelab", "traces");
}

/**
 * The trace a recipe replays. With synthesis parameters it is synthesized once and cached under a key derived
 * from the source file's bytes, the parameters and the seed, so a rerun (or another arm) reuses it, and any change
 * to those produces a new file rather than a stale one.
 */
export async function prepareRecipeTrace(
  recipe: Recipe,
  recipeDir: string,
  opts: { dataDir?: string; cacheDir?: string; onWarning?: (m: string) => void } = {},
): Promise<RecipeTrace> {
  const src = recipe.trace.source;
  const source = isDatasetName(src) || isAbsolute(src) ? src : resolve(recipeDir, src);
  const input = await resolveTraceInput(source, opts.dataDir === undefined ? {} : { dataDir: opts.dataDir });
  const synthesis = recipeSynthesisOptions(recipe);
  const hash = createHash("sha256");
  hash.update(await readFile(input));
  hash.update(JSON.stringify(synthesis ?? null));
  const key = hash.digest("hex");
  if (!synthesis) return { file: input, cached: false, key };
  const file = join(opts.cacheDir ?? defaultTraceCacheDir(), `${key.slice(0, 32)}.jsonl`);
  try {
    await access(file);
    return { file, cached: true, key };
  } catch {
    await synthesizeTraceFile(input, file, synthesis, opts.onWarning ? { onWarning: opts.onWarning } : {});
    return { file, cached: false, key };
  }
}
