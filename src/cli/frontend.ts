import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { request } from "undici";
import { ServelabError } from "../errors.ts";
import { parseHttpUrl } from "../io/http-url.ts";
import { createBlockHasher } from "../kv/block-hash.ts";
import { loadRecipe } from "../recipe/load.ts";
import { pickArm } from "../recipe/pick-arm.ts";
import { armRouterOptions } from "../router/arm-router.ts";
import type { CreateRouterOptions } from "../router/create-router.ts";
import { ROUTER_POLICIES, type RouterPolicy } from "../router/router.ts";
import { DISAGG_PROTOCOL_NAMES, disaggProtocolNamed } from "../serve/frontend/disagg-protocols.ts";
import { type Discovery, readDiscovery, type WorkerSpec } from "../serve/frontend/discovery.ts";
import {
  DEFAULT_FRONTEND_BODY_LIMIT,
  DEFAULT_OVERLOAD_STATUS,
  type FrontendOptions,
  startFrontend,
} from "../serve/frontend/frontend.ts";
import { offsetEndpointPort } from "../serve/kv-events/config.ts";
import { createDeepSeekTokenizer, INLINE_PROMPT_CHARS } from "../serve/tokenizer.ts";
import { collect, hostOption, intOption, portOption, positiveNumberOption } from "./options.ts";
import { waitForStopSignal } from "./stop-signal.ts";

/** Dynamo's default `--kv-block-size`. */
const DEFAULT_BLOCK_SIZE = 32;

function fraction(text: string): number {
  const v = Number(text);
  if (text.trim() === "" || !(v >= 0 && v <= 1))
    throw new InvalidArgumentError("expected a number from 0 to 1.");
  return v;
}

function statusOption(text: string): number {
  const v = intOption(200)(text);
  if (v > 999) throw new InvalidArgumentError("expected an HTTP status from 200 to 999.");
  return v;
}

/** `ID=VALUE` pairs of a repeatable per-worker flag. */
function perWorker(values: readonly string[], flag: string, ids: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const eq = v.indexOf("=");
    const id = eq > 0 ? v.slice(0, eq) : "";
    if (!ids.has(id))
      throw new ServelabError(
        "USAGE",
        `${flag} '${v}': expected WORKER_ID=VALUE with a worker id of ${[...ids].join(", ")}`,
      );
    out.set(id, v.slice(eq + 1));
  }
  return out;
}

/**
 * KV-event sources of `--worker`s as vLLM lays them out: rank r of a worker publishes on its endpoint's port + r
 * (and replays on the replay port + r).
 */
function kvEventSources(
  workers: WorkerSpec[],
  o: { kvEventsEndpoint?: string[]; kvEventsReplayEndpoint?: string[]; kvEventsTopic: string },
): void {
  const ids = new Set(workers.map((w) => w.id));
  const pub = perWorker(o.kvEventsEndpoint ?? [], "--kv-events-endpoint", ids);
  const replay = perWorker(o.kvEventsReplayEndpoint ?? [], "--kv-events-replay-endpoint", ids);
  for (const w of workers) {
    const endpoint = pub.get(w.id);
    if (endpoint === undefined) {
      if (replay.has(w.id))
        throw new ServelabError(
          "USAGE",
          `--kv-events-replay-endpoint ${w.id}: give its --kv-events-endpoint too`,
        );
      continue;
    }
    const r = replay.get(w.id);
    w.kv_events = Array.from({ length: w.dp_size }, (_, rank) => ({
      dp_rank: w.dp_size === 1 ? null : rank,
      endpoint: offsetEndpointPort(endpoint, rank, "--kv-events-endpoint"),
      replay_endpoint: r === undefined ? null : offsetEndpointPort(r, rank, "--kv-events-replay-endpoint"),
      topic: o.kvEventsTopic,
    }));
  }
}

/** `URL` or `ID=URL`; ids default to the role and position (`w0`, `prefill-1`). */
function workerSpecs(values: readonly string[], role: WorkerSpec["role"], dpSize: number): WorkerSpec[] {
  const prefix = role === "aggregated" ? "w" : `${role}-`;
  return values.map((v, i) => {
    const eq = v.indexOf("=");
    const hasId = eq > 0 && !v.slice(0, eq).includes("/");
    const id = hasId ? v.slice(0, eq) : `${prefix}${i}`;
    const url = parseHttpUrl(
      hasId ? v.slice(eq + 1) : v,
      `--${role === "aggregated" ? "" : `${role}-`}worker`,
    );
    return { id, url: url.origin + url.pathname.replace(/\/+$/, ""), role, dp_size: dpSize, kv_events: [] };
  });
}

/** Asks the workers which model they serve (the first to answer `/v1/models` decides). */
async function askModel(workers: readonly WorkerSpec[]): Promise<string> {
  for (const w of workers) {
    try {
      const res = await request(`${w.url}/v1/models`, { headersTimeout: 3000, bodyTimeout: 3000 });
      const body = (await res.body.json()) as { data?: { id?: unknown }[] };
      const id = body.data?.[0]?.id;
      if (res.statusCode === 200 && typeof id === "string") return id;
    } catch {
      // Try the next worker; the error below names them all.
    }
  }
  throw new ServelabError(
    "USAGE",
    `no worker answered GET /v1/models (${workers.map((w) => w.url).join(", ")}); pass --model NAME`,
  );
}

export function registerFrontendCommand(program: Command): void {
  program
    .command("frontend")
    .description(
      "an OpenAI-compatible frontend routing requests over engine workers (the mock, vLLM, SGLang, TRT-LLM) with servelab's routers",
    )
    .option("--worker <url>", "an aggregated worker, `URL` or `ID=URL` (repeatable)", collect)
    .option(
      "--prefill-worker <url>",
      "a prefill worker of a disaggregated pool, `URL` or `ID=URL` (repeatable)",
      collect,
    )
    .option(
      "--decode-worker <url>",
      "a decode worker of a disaggregated pool, `URL` or `ID=URL` (repeatable)",
      collect,
    )
    .option(
      "--kv-events-endpoint <id=endpoint>",
      "where worker ID publishes KV events (vLLM: rank r on port + r; repeatable)",
      collect,
    )
    .option(
      "--kv-events-replay-endpoint <id=endpoint>",
      "worker ID's KV-event replay socket (repeatable)",
      collect,
    )
    .option("--kv-events-topic <topic>", "KV-event topic prefix to subscribe to", "")
    .addOption(
      new Option("--disagg-protocol <name>", "how prefill and decode workers hand over")
        .choices(DISAGG_PROTOCOL_NAMES)
        .default("vllm-nixl" as const),
    )
    .option("--discovery <file>", "the workers of a `servelab up` stack (its discovery file)")
    .option("--recipe <file>", "take the router settings and block size from a recipe arm")
    .option("--arm <name>", "the recipe arm (default: its only arm)")
    .addOption(
      new Option("--router-mode <mode>", "routing policy (default: the arm's, else round-robin)").choices(
        ROUTER_POLICIES,
      ),
    )
    .option("--dp-size <n>", "attention-DP ranks of each --worker", intOption(1), 1)
    .option(
      "--kv-block-size <n>",
      `tokens per KV block the router hashes (default: the arm's, else ${DEFAULT_BLOCK_SIZE})`,
      intOption(1),
    )
    .option(
      "--kv-overlap-score-weight <x>",
      "weight of the prefill term in the KV router's cost (Dynamo default 1)",
      Number,
    )
    .option(
      "--router-temperature <x>",
      "softmax temperature over KV costs; 0 picks the cheapest (Dynamo default 0)",
      Number,
    )
    .option("--no-kv-events", "KV router in approximate mode: predict caches from routing decisions")
    .option("--router-seed <n>", "seed of the router's random choices", intOption(0), 0)
    .option("--model <name>", "served model name (default: the discovery file's, else what the workers list)")
    .option("--http-host <address>", "address to listen on", hostOption, "127.0.0.1")
    .option("--http-port <n>", "port to listen on (0: any free port)", portOption, 8000)
    .option("--api-key <key>", "require `Authorization: Bearer <key>` on every /v1 route")
    .option("--cors-origin <origin>", "send CORS headers allowing this origin")
    .option(
      "--body-limit-mb <n>",
      "largest request body, MiB (Dynamo's default)",
      positiveNumberOption,
      DEFAULT_FRONTEND_BODY_LIMIT / 2 ** 20,
    )
    .option(
      "--overload-status <code>",
      "HTTP status when every worker is busy (Dynamo ≥ 1.3: 529)",
      statusOption,
      DEFAULT_OVERLOAD_STATUS,
    )
    .option(
      "--active-decode-blocks-threshold <f>",
      "a worker is busy above this fraction of KV blocks in use (needs the discovery file's block counts)",
      fraction,
    )
    .option(
      "--active-prefill-tokens-threshold <n>",
      "a worker is busy above this many queued prefill tokens",
      intOption(0),
    )
    .option(
      "--stream-timeout-secs <s>",
      "fail a request whose worker sends nothing for this long",
      positiveNumberOption,
    )
    .option(
      "--migration-limit <n>",
      "move a request to another worker up to N times when its worker fails (Dynamo's flag; 0: off)",
      intOption(0),
      0,
    )
    .option("--health-interval-ms <n>", "how often workers' /health is polled", intOption(10), 1000)
    .action(async (o) => {
      const discovery: Discovery | undefined =
        o.discovery === undefined ? undefined : await readDiscovery(o.discovery);
      const recipe = o.recipe === undefined ? undefined : await loadRecipe(o.recipe);
      const fromRecipe = recipe ? pickArm(recipe, o.arm ?? discovery?.arm) : undefined;
      const flagged = [
        ...workerSpecs(o.worker ?? [], "aggregated", o.dpSize),
        ...workerSpecs(o.prefillWorker ?? [], "prefill", o.dpSize),
        ...workerSpecs(o.decodeWorker ?? [], "decode", o.dpSize),
      ];
      kvEventSources(flagged, o);
      const workers: WorkerSpec[] = [...(discovery?.workers ?? []), ...flagged];
      if (workers.length === 0)
        throw new ServelabError("USAGE", "no workers: give --worker URL (repeatable) or --discovery FILE");
      const group = fromRecipe?.arm.workers ?? fromRecipe?.arm.prefill;
      const blockSize = o.kvBlockSize ?? group?.kv_block_size ?? discovery?.block_size ?? DEFAULT_BLOCK_SIZE;
      const policy: RouterPolicy =
        o.routerMode ?? (fromRecipe?.arm.router.mode as RouterPolicy | undefined) ?? "round-robin";
      const hasher = await createBlockHasher();
      const base = fromRecipe
        ? armRouterOptions(fromRecipe.arm, blockSize, o.routerSeed, hasher, { seqAddressedEvents: false })
        : {
            blockSize,
            seed: o.routerSeed,
            hasher,
            trackActiveBlocks: policy === "least-loaded" || policy === "kv",
          };
      const router: CreateRouterOptions & { hasher: typeof hasher } = {
        ...base,
        hasher,
        ...(o.kvOverlapScoreWeight === undefined ? {} : { overlapScoreWeight: o.kvOverlapScoreWeight }),
        ...(o.routerTemperature === undefined ? {} : { temperature: o.routerTemperature }),
        ...(o.kvEvents === false ? { useKvEvents: false } : {}),
      };
      for (const [flag, v] of [
        ["--kv-overlap-score-weight", o.kvOverlapScoreWeight],
        ["--router-temperature", o.routerTemperature],
      ] as const) {
        if (v !== undefined && !(Number.isFinite(v) && v >= 0))
          throw new ServelabError("USAGE", `${flag} must be a number ≥ 0, got ${v}`);
      }
      const model = o.model ?? discovery?.model ?? (await askModel(workers));
      const tokenizer = createDeepSeekTokenizer({ inlineMaxChars: INLINE_PROMPT_CHARS });
      tokenizer.preload();
      const options: FrontendOptions = {
        models: [model],
        workers,
        policy,
        router,
        tokenizer,
        host: o.httpHost,
        port: o.httpPort,
        maxBodyBytes: Math.round(o.bodyLimitMb * 2 ** 20),
        overloadStatus: o.overloadStatus,
        healthIntervalMs: o.healthIntervalMs,
        disaggProtocol: disaggProtocolNamed(o.disaggProtocol),
        migrationLimit: o.migrationLimit,
        onWorkerHealth: (id, healthy, reason) =>
          process.stderr.write(
            `servelab frontend: worker ${id} ${healthy ? "healthy" : "unhealthy"} (${reason})\n`,
          ),
        ...(o.apiKey === undefined ? {} : { apiKey: o.apiKey }),
        ...(o.corsOrigin === undefined ? {} : { corsOrigin: o.corsOrigin }),
        ...(o.streamTimeoutSecs === undefined
          ? {}
          : { streamTimeoutMs: Math.round(o.streamTimeoutSecs * 1000) }),
        busy: {
          ...(o.activeDecodeBlocksThreshold === undefined
            ? {}
            : { activeDecodeBlocks: o.activeDecodeBlocksThreshold }),
          ...(o.activePrefillTokensThreshold === undefined
            ? {}
            : { activePrefillTokens: o.activePrefillTokensThreshold }),
        },
      };
      const fe = await startFrontend(options).catch(async (e: NodeJS.ErrnoException) => {
        await tokenizer.close();
        if (e.code === "EADDRINUSE" || e.code === "EADDRNOTAVAIL" || e.code === "EACCES")
          throw new ServelabError("USAGE", `cannot listen on ${o.httpHost}:${o.httpPort}: ${e.message}`);
        if (e instanceof RangeError) throw new ServelabError("USAGE", e.message);
        throw e;
      });
      process.stdout.write(
        `servelab frontend: ${model} at ${fe.url}/v1, ${policy} over ${workers.length} workers (${workers.map((w) => `${w.id}=${w.url}`).join(", ")}), KV block ${blockSize}\n`,
      );
      const signal = await waitForStopSignal();
      process.stdout.write(
        `servelab frontend: ${signal}, shutting down (${fe.inFlight()} requests in flight)\n`,
      );
      await fe.close();
      await tokenizer.close();
    });
}
