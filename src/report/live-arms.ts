import { join } from "node:path";
import { connectionLimitFromEnv, type LoadMode, runBench } from "../bench/run-bench.ts";
import { ServelabError } from "../errors.ts";
import { parseGoodput } from "../metrics/goodput.ts";
import type { Recipe } from "../recipe/schema.ts";
import type { TraceRow } from "../trace/types.ts";

/** `NAME=URL` from `--endpoint`. */
export function parseEndpoint(spec: string): { name: string; url: string } {
  const at = spec.indexOf("=");
  const name = spec.slice(0, at).trim();
  const url = spec.slice(at + 1).trim();
  if (at <= 0 || url === "") throw new ServelabError("USAGE", `--endpoint expects NAME=URL, got '${spec}'`);
  if (!/^[\w.+-]+$/.test(name)) {
    throw new ServelabError(
      "USAGE",
      `--endpoint name '${name}' may use letters, digits, '.', '_', '+' and '-' only`,
    );
  }
  let u: URL;
  try {
    u = new URL(url.includes("://") ? url : `http://${url}`);
  } catch {
    throw new ServelabError("USAGE", `--endpoint ${name}: '${url}' is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new ServelabError("USAGE", `--endpoint ${name}: '${url}' is not an http:// or https:// URL`);
  return { name, url: u.origin };
}

/** `--endpoint` list: each NAME=URL, names distinct. */
export function parseEndpoints(specs: readonly string[]): { name: string; url: string }[] {
  const endpoints = specs.map(parseEndpoint);
  const seen = new Set<string>();
  for (const e of endpoints) {
    if (seen.has(e.name)) throw new ServelabError("USAGE", `--endpoint name '${e.name}' is given twice`);
    seen.add(e.name);
  }
  return endpoints;
}

/**
 * Before any load: each endpoint must answer `GET /v1/models` and list the model the run will send, or the A/B
 * would measure error responses.
 */
export async function checkEndpoints(
  endpoints: readonly { name: string; url: string }[],
  model: string,
): Promise<void> {
  for (const { name, url } of endpoints) {
    let served: string[];
    try {
      const res = await fetch(`${url}/v1/models`, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = (await res.json()) as { data?: { id?: unknown }[] };
      served = (body.data ?? []).map((m) => String(m.id));
    } catch (e) {
      throw new ServelabError(
        "ENDPOINT_CHECK",
        `endpoint ${name} (${url}): GET /v1/models failed: ${(e as Error).message}`,
      );
    }
    if (!served.includes(model))
      throw new ServelabError(
        "ENDPOINT_CHECK",
        `endpoint ${name} (${url}) does not serve model '${model}'; it serves: ${served.join(", ") || "nothing"}`,
        ["set the model the run sends with --model"],
      );
  }
}

/** The load generator's schedule for a recipe's benchmark section. */
export function recipeLoadMode(recipe: Recipe, rows: number): LoadMode {
  const b = recipe.benchmark;
  if (b.mode === "fixed_schedule") {
    return {
      kind: "fixed",
      autoOffset: b.auto_offset,
      ...(b.start_offset_ms === undefined ? {} : { startOffsetMs: b.start_offset_ms }),
      ...(b.end_offset_ms === undefined ? {} : { endOffsetMs: b.end_offset_ms }),
    };
  }
  if (b.mode === "concurrency")
    return { kind: "concurrency", concurrency: b.concurrency, count: b.request_count ?? rows };
  return {
    kind: "rate",
    rate: b.request_rate,
    arrivals: b.request_rate_mode,
    count: b.request_count ?? rows,
    ...(b.concurrency === undefined ? {} : { concurrency: b.concurrency }),
  };
}

/**
 * Replays the recipe's trace against each live endpoint in turn, with the recipe's benchmark settings, writing
 * each endpoint's AIPerf-compatible artifacts to `<outDir>/arms/<name>` — the same layout the simulated arms use, so
 * the same report follows.
 */
export async function runLiveArms(
  recipe: Recipe,
  rows: readonly TraceRow[],
  endpoints: readonly { name: string; url: string }[],
  outDir: string,
  cliCommand: string,
  onProgress: (arm: string, done: number, total: number) => void,
  model = recipe.model.served_model_name,
): Promise<string[]> {
  const prompts = { blockSize: recipe.benchmark.prompt_block_size, seed: recipe.benchmark.random_seed };
  const dirs: string[] = [];
  for (const { name, url } of endpoints) {
    const dir = join(outDir, "arms", name);
    await runBench(
      {
        url,
        endpoint: "chat",
        model,
        streaming: recipe.benchmark.streaming,
        rows,
        mode: recipeLoadMode(recipe, rows.length),
        warmupCount: 0,
        connectionLimit: connectionLimitFromEnv(),
        gracePeriodS: 30,
        timeoutS: recipe.benchmark.request_timeout_s,
        extraInputs: {},
        headers: {},
        goodput: parseGoodput(recipe.benchmark.goodput),
        artifactDir: dir,
        useServerTokenCount: false,
        cliCommand,
        inputConfig: {
          endpoint: { url, model_names: [model] },
          goodput: recipe.benchmark.goodput,
        },
        onProgress: ({ done, total }) => onProgress(name, done, total),
      },
      { prompts },
    );
    dirs.push(dir);
  }
  return dirs;
}
