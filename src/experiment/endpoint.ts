import { ServelabError } from "../errors.ts";
import { parseHttpUrl } from "../io/http-url.ts";
import { connectionLimitFromEnv, type LoadMode, runBench } from "../loadgen/run-bench.ts";
import { parseGoodput } from "../metrics/goodput.ts";
import type { Recipe } from "../recipe/schema.ts";
import { readTrace } from "../trace/reader.ts";
import { scaleArrivals } from "../trace/schedule.ts";
import type { TraceRow } from "../trace/types.ts";
import type { ArmRunRequest, Backend, BackendHooks } from "./backend.ts";

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
  return { name, url: parseHttpUrl(url, `--endpoint ${name}:`).origin };
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

/** Where the arms of a live A/B run: each arm (an endpoint's name) at its URL. */
export interface EndpointBackendOptions {
  endpoints: readonly { name: string; url: string }[];
  /** The model name the requests carry. */
  model: string;
  cliCommand: string;
}

/** What a live replay adds to its `input_config.servelab` (the report states it). */
export interface LiveRunInfo {
  backend: "endpoint" | "loopback";
  scale?: number;
  speedup_ratio?: number;
  requests?: number;
}

/**
 * Replays one arm run's trace (scaled to its load, times `timeFactor` faster, the first `limit` requests) against
 * `url` with the recipe's benchmark settings, into the run's directory.
 */
export async function replayArm(
  url: string,
  req: ArmRunRequest,
  rows: readonly TraceRow[],
  opts: { model: string; cliCommand: string; info: LiveRunInfo; timeFactor?: number; limit?: number },
  hooks: BackendHooks,
): Promise<void> {
  const { recipe } = req;
  const picked = opts.limit === undefined ? rows : rows.slice(0, opts.limit);
  const scaled = scaleArrivals(picked, req.load * (opts.timeFactor ?? 1));
  await runBench(
    {
      url,
      endpoint: "chat",
      model: opts.model,
      streaming: recipe.benchmark.streaming,
      rows: scaled,
      mode: recipeLoadMode(recipe, scaled.length),
      warmupCount: 0,
      connectionLimit: connectionLimitFromEnv(),
      gracePeriodS: 30,
      timeoutS: recipe.benchmark.request_timeout_s,
      extraInputs: {},
      headers: {},
      goodput: parseGoodput(recipe.benchmark.goodput),
      artifactDir: req.dir,
      useServerTokenCount: false,
      cliCommand: opts.cliCommand,
      // The rest of input_config comes from the run itself (see runBench).
      inputConfig: {
        input: {
          file: req.traceFile,
          custom_dataset_type: "mooncake_trace",
          random_seed: recipe.benchmark.random_seed,
        },
        servelab: { recipe: recipe.name, arm: req.arm, load: req.load, ...opts.info },
      },
      onProgress: ({ done, total }) => hooks.onProgress(req.label, done, total),
    },
    { prompts: { blockSize: recipe.benchmark.prompt_block_size, seed: recipe.benchmark.random_seed } },
  );
}

/** Each trace file read once for all the runs that replay it. */
export function traceCache(): (req: ArmRunRequest) => Promise<readonly TraceRow[]> {
  const traces = new Map<string, readonly TraceRow[]>();
  return async (req) => {
    let rows = traces.get(req.traceFile);
    if (!rows) {
      rows = await readTrace(req.traceFile, { blockSize: req.recipe.benchmark.prompt_block_size });
      traces.set(req.traceFile, rows);
    }
    return rows;
  };
}

/**
 * Live endpoints as a backend: each arm run replays its trace (scaled to its load) against the endpoint named as
 * the arm, with the recipe's benchmark settings, one run after another so that they do not load each other.
 */
export function endpointBackend(opts: EndpointBackendOptions): Backend {
  const urls = new Map(opts.endpoints.map((e) => [e.name, e.url]));
  return {
    kind: "endpoint",
    async run(requests, hooks) {
      const rowsOf = traceCache();
      for (const req of requests) {
        if (hooks.stop?.aborted)
          throw new ServelabError("INTERRUPTED", `stopped before ${req.label}`, [`stopped: ${req.label}`]);
        const url = urls.get(req.arm);
        if (!url) throw new ServelabError("USAGE", `no --endpoint is named ${req.arm}`);
        await replayArm(url, req, await rowsOf(req), { ...opts, info: { backend: "endpoint" } }, hooks);
        hooks.onDone?.(req);
      }
    },
  };
}
