import { readFile } from "node:fs/promises";
import { type Document, LineCounter, parseDocument, stringify } from "yaml";
import type { z } from "zod";
import { ServelabError } from "../errors.ts";
import type { SynthesisOptions } from "../trace/types.ts";
import { type Recipe, recipeSchema } from "./schema.ts";
import { locatePath } from "./yaml-locate.ts";

type ZodIssue = z.core.$ZodIssue;
type PathSegment = PropertyKey;

/** `arms.disagg-kv.prefill.engine.max_batch_size`, with list indexes as `[i]`. */
export function formatRecipePath(path: readonly PathSegment[]): string {
  if (path.length === 0) return "(root)";
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

interface Problem {
  path: PathSegment[];
  reason: string;
}

function describeIssue(issue: ZodIssue): Problem[] {
  const path = [...issue.path];
  switch (issue.code) {
    case "unrecognized_keys":
      // One line per key, each pointing at the key's own line.
      return issue.keys.map((key) => ({ path: [...path, key], reason: issue.message }));
    case "invalid_key":
      return [{ path, reason: issue.issues.map((inner) => inner.message).join("; ") }];
    case "invalid_type":
      if (issue.input === undefined) return [{ path, reason: `missing (expected ${issue.expected})` }];
      return [{ path, reason: issue.message }];
    default:
      return [{ path, reason: issue.message }];
  }
}

function schemaError(file: string, doc: Document, lineCounter: LineCounter, issues: readonly ZodIssue[]) {
  const located = issues.flatMap(describeIssue).map((problem, order) => {
    const { position } = locatePath(
      doc,
      lineCounter,
      problem.path.filter((s) => typeof s !== "symbol"),
    );
    return { ...problem, position, order };
  });
  // Source order reads top to bottom in the editor; schema order breaks ties.
  located.sort(
    (a, b) => a.position.line - b.position.line || a.position.col - b.position.col || a.order - b.order,
  );
  const details = located.map(
    (p) => `${file}:${p.position.line}:${p.position.col}: ${formatRecipePath(p.path)}: ${p.reason}`,
  );
  const count = details.length === 1 ? "1 problem" : `${details.length} problems`;
  return new ServelabError("RECIPE_INVALID", `${file}: recipe does not match the schema (${count})`, details);
}

/** Parses and validates recipe YAML; `file` is only used to name where problems are. */
export function parseRecipe(text: string, file: string): Recipe {
  const lineCounter = new LineCounter();
  // `merge` lets arms share an engine block through `<<: *anchor`, the usual way to write an A/B without copying.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const details = doc.errors.map((error) => {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      return `${file}:${line}:${col}: ${error.message}`;
    });
    const first = doc.errors[0]!;
    const { line, col } = lineCounter.linePos(first.pos[0]);
    throw new ServelabError(
      "RECIPE_PARSE",
      `${file}:${line}:${col}: not valid YAML: ${first.message}`,
      details.slice(1),
    );
  }
  let data: unknown;
  try {
    // Anchors expand at most 100 times over (yaml's default cap): an alias bomb is refused, not expanded.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ServelabError("RECIPE_PARSE", `${file}: not a usable YAML document: ${(e as Error).message}`);
  }
  if (data === null || data === undefined) {
    throw new ServelabError("RECIPE_INVALID", `${file}: the recipe is empty`);
  }
  const result = recipeSchema.safeParse(data, { reportInput: true });
  if (!result.success) throw schemaError(file, doc, lineCounter, result.error.issues);
  return result.data;
}

export async function loadRecipe(file: string): Promise<Recipe> {
  let text: string;
  try {
    // A UTF-8 byte-order mark (some Windows editors write one) is not part of the YAML.
    text = (await readFile(file, "utf8")).replace(/^\uFEFF/, "");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ServelabError("FILE_NOT_FOUND", `recipe file not found: ${file}`);
    throw new ServelabError("FILE_READ", `cannot read recipe ${file}: ${(e as Error).message}`);
  }
  return parseRecipe(text, file);
}

/** The synthesizer's options for this recipe's trace, or undefined when the source is replayed as is. */
export function recipeSynthesisOptions(recipe: Recipe): SynthesisOptions | undefined {
  const s = recipe.trace.synthesis;
  if (!s) return undefined;
  const options: SynthesisOptions = {
    numRequests: s.num_requests,
    speedupRatio: s.speedup_ratio,
    prefixLenMultiplier: s.prefix_len_multiplier,
    prefixRootMultiplier: s.prefix_root_multiplier,
    promptLenMultiplier: s.prompt_len_multiplier,
    oslMultiplier: s.osl_multiplier,
    blockSize: s.block_size,
    seed: recipe.trace.seed,
  };
  if (s.max_isl !== undefined) options.maxIsl = s.max_isl;
  if (s.min_isl !== undefined) options.minIsl = s.min_isl;
  if (s.min_osl !== undefined) options.minOsl = s.min_osl;
  if (s.max_osl !== undefined) options.maxOsl = s.max_osl;
  return options;
}

/**
 * The recipe with every default written out, as YAML. Keys come in schema order (arms and goodput metrics in the
 * order the recipe lists them), so the same recipe always prints the same bytes and the output re-parses to it.
 */
export function resolvedRecipeYaml(recipe: Recipe): string {
  // Defaults shared between arms are one object in memory; anchors for them would only obscure the output.
  return stringify(recipe, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** The same resolved recipe as JSON, for tools. */
export function resolvedRecipeJson(recipe: Recipe): string {
  return `${JSON.stringify(recipe, null, 2)}\n`;
}
