import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { PERF_MODEL_CHOICES } from "../engine/perf-models.ts";
import { ServelabError } from "../errors.ts";
import { loadRecipe } from "../recipe/load.ts";
import { DEFAULT_KV_LEASE_S, DEFAULT_KV_TRANSFER_BANDWIDTH_GBPS } from "../serve/disagg/kv-handover.ts";
import { resolveWorkerDisagg } from "../serve/disagg/worker-mode.ts";
import { parseKvEventsConfig, publishes } from "../serve/kv-events/config.ts";
import { REPLAY_LAYOUTS } from "../serve/kv-events/replay-frames.ts";
import { KV_EVENT_PORTS } from "../serve/kv-events/worker-events.ts";
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_TOKENS, startMockWorker } from "../serve/mock-worker.ts";
import { createDeepSeekTokenizer } from "../serve/tokenizer.ts";
import { MOCKER_DEFAULTS, resolveWorkerConfig, WORKER_GROUPS } from "../serve/worker-config.ts";
import { withMockerFlags } from "./mocker-flags.ts";
import { intOption, positiveNumberOption } from "./options.ts";
import { waitForStopSignal } from "./stop-signal.ts";

function portOption(text: string): number {
  const port = intOption(0)(text);
  if (port > 65535) throw new InvalidArgumentError(`a port is at most 65535, got ${port}.`);
  return port;
}

function hostOption(text: string): string {
  if (text.trim() === "") throw new InvalidArgumentError("expected a host name or address.");
  return text.trim();
}

const d = MOCKER_DEFAULTS.engine;

export function registerWorkerCommand(program: Command): void {
  program
    .command("worker")
    .description(
      "serve the mock engine as an OpenAI-compatible HTTP server (chat and completions, streaming or not) whose tokens follow the modelled engine steps on the wall clock",
    )
    .option("--recipe <file>", "take the engine from a recipe arm's worker group")
    .option("--arm <name>", "the recipe arm (default: its only arm)")
    .addOption(
      new Option("--group <group>", "the arm's worker group (default: workers)").choices(WORKER_GROUPS),
    )
    .option(
      "--model <name>",
      `served model name (default: the recipe's, else ${MOCKER_DEFAULTS.servedModel})`,
    )
    .option("--host <address>", "address to listen on", hostOption, "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free port)", portOption, 8000)
    .option(
      "--speedup-ratio <x>",
      "run engine steps this many times faster than modelled",
      positiveNumberOption,
      1,
    )
    .addOption(
      new Option(
        "--perf-model <name>",
        "step-time model (default: auto, the measured profile where the recipe matches it, else polynomial)",
      ).choices(PERF_MODEL_CHOICES),
    )
    .option(
      "--dp-size <n>",
      `attention-DP ranks (default: the recipe's, else ${MOCKER_DEFAULTS.dpSize})`,
      intOption(1),
    )
    .option(
      "--max-batch-size <n>",
      `running requests per rank (default: recipe, else ${d.maxBatchSize})`,
      intOption(1),
    )
    .option(
      "--max-num-tokens <n>",
      `tokens per rank per step (default: recipe, else ${d.maxNumTokens})`,
      intOption(1),
    )
    .option(
      "--kv-blocks <n>",
      `KV blocks per rank (default: recipe, else ${d.kvCapacityBlocks})`,
      intOption(1),
    )
    .option("--block-size <n>", `tokens per KV block (default: recipe, else ${d.blockSize})`, intOption(1))
    .option("--prefix-caching", "reuse cached prompt blocks (default: recipe, else on)")
    .option("--no-prefix-caching", "never reuse prompt blocks")
    .option("--chunked-prefill", "split long prompts over steps (default: recipe, else on)")
    .option("--no-chunked-prefill", "prefill each prompt in one step")
    .option(
      "--default-max-tokens <n>",
      "output tokens of a request that sets no max_completion_tokens / max_tokens",
      intOption(1),
      DEFAULT_MAX_TOKENS,
    )
    .option("--max-body-bytes <n>", "largest request body accepted", intOption(1), DEFAULT_MAX_BODY_BYTES)
    .option(
      "--kv-events-config <json>",
      'publish KV events over ZMQ as vLLM does, e.g. \'{"enable_kv_cache_events":true,"endpoint":"tcp://*:5557","replay_endpoint":"tcp://*:5558","topic":"kv-events"}\' (block hashes: sha256_cbor under $PYTHONHASHSEED, default 0)',
    )
    .addOption(
      new Option(
        "--kv-events-ports <layout>",
        "per-rank: rank r on port + r (vLLM); shared: one port for all ranks",
      )
        .choices(KV_EVENT_PORTS)
        .default("per-rank" as const),
    )
    .addOption(
      new Option(
        "--kv-events-replay-layout <version>",
        "replay reply frames of this vLLM version (0.25: no topic frame)",
      )
        .choices(REPLAY_LAYOUTS)
        .default("0.26" as const),
    )
    // Dynamo mocker's names for the same settings, so its command lines work unchanged.
    .option("--model-path <name>", "the same as --model (Dynamo mocker's name)")
    .option("--data-parallel-size <n>", "the same as --dp-size (Dynamo mocker's name)", intOption(1))
    .option("--max-num-seqs <n>", "the same as --max-batch-size (Dynamo mocker's name)", intOption(1))
    .option(
      "--max-num-batched-tokens <n>",
      "the same as --max-num-tokens (Dynamo mocker's name)",
      intOption(1),
    )
    .option("--num-gpu-blocks-override <n>", "the same as --kv-blocks (Dynamo mocker's name)", intOption(1))
    .option("--enable-prefix-caching", "the same as --prefix-caching (Dynamo mocker's name)")
    .option("--no-enable-prefix-caching", "the same as --no-prefix-caching")
    .option("--enable-chunked-prefill", "the same as --chunked-prefill (Dynamo mocker's name)")
    .option("--no-enable-chunked-prefill", "the same as --no-chunked-prefill")
    .option(
      "--extra-engine-args <file>",
      "a TensorRT-LLM engine YAML (max_batch_size, max_num_tokens, enable_chunked_prefill, kv_cache_config, attention DP); flags override it",
    )
    .option(
      "--disaggregation-mode <mode>",
      "Dynamo's worker role: prefill (vLLM NIXL's prefill leg: one token, answered with kv_transfer_params), decode (takes those params and skips the prompt), or aggregated (default: the --group's role, else aggregated)",
    )
    .option(
      "--kv-transfer-bandwidth <gb_per_s>",
      `KV hand-over bandwidth of a prefill or decode worker (default: the recipe's NVLink bandwidth, else Dynamo mocker's ${DEFAULT_KV_TRANSFER_BANDWIDTH_GBPS})`,
      positiveNumberOption,
    )
    .option(
      "--kv-bytes-per-token <n>",
      "KV bytes one prompt token takes over all layers (default: the recipe model's; needed without --recipe)",
      intOption(1),
    )
    .option(
      "--kv-lease-seconds <s>",
      `how long a prefill worker holds blocks no decode worker has read (default ${DEFAULT_KV_LEASE_S}, vLLM's VLLM_NIXL_ABORT_REQUEST_TIMEOUT; modelled time, divided by --speedup-ratio)`,
      positiveNumberOption,
    )
    .action(async (o) => {
      const recipe = o.recipe === undefined ? undefined : await loadRecipe(o.recipe);
      const engineFlags = await withMockerFlags(o);
      const defined = Object.fromEntries(Object.entries(engineFlags).filter(([, v]) => v !== undefined));
      const disagg = resolveWorkerDisagg(o, recipe);
      const config = resolveWorkerConfig(
        {
          ...(o.arm === undefined ? {} : { arm: o.arm }),
          ...(disagg.group === undefined ? {} : { group: disagg.group }),
          ...(o.perfModel === undefined ? {} : { perfModel: o.perfModel }),
          ...defined,
        },
        recipe,
      );
      const kvEvents = o.kvEventsConfig === undefined ? undefined : parseKvEventsConfig(o.kvEventsConfig);
      const tokenizer = createDeepSeekTokenizer();
      // Loads in its own thread while the port opens, so the first request does not pay for it.
      tokenizer.preload();
      const worker = await startMockWorker({
        servedModel: config.servedModel,
        engine: config.engine,
        dpSize: config.dpSize,
        stepModel: config.stepModel,
        speedupRatio: o.speedupRatio,
        host: o.host,
        port: o.port,
        maxBodyBytes: o.maxBodyBytes,
        defaultMaxTokens: o.defaultMaxTokens,
        tokenizer,
        disaggregationMode: disagg.mode,
        ...(disagg.kvTransfer ? { kvTransfer: disagg.kvTransfer } : {}),
        ...(kvEvents && publishes(kvEvents)
          ? {
              kvEvents: {
                config: kvEvents,
                ports: o.kvEventsPorts,
                replayLayout: o.kvEventsReplayLayout,
                pythonHashSeed: process.env.PYTHONHASHSEED ?? "0",
              },
            }
          : {}),
      }).catch(async (e: NodeJS.ErrnoException) => {
        await tokenizer.close();
        if (
          e.code === "EADDRINUSE" ||
          e.code === "EADDRNOTAVAIL" ||
          e.code === "EACCES" ||
          e.code === "ENOTFOUND"
        )
          throw new ServelabError("USAGE", `cannot listen on ${o.host}:${o.port}: ${e.message}`);
        throw e;
      });
      const e = config.engine;
      process.stdout.write(
        `servelab worker: serving ${config.servedModel} at ${worker.url}/v1 (${config.source}; ` +
          `${config.stepModel.name} step model, speed-up ${o.speedupRatio}x, dp ${config.dpSize}, ` +
          `batch ${e.maxBatchSize}, ${e.maxNumTokens} tokens/step, ${e.kvCapacityBlocks} KV blocks of ${e.blockSize})\n`,
      );
      if (disagg.mode !== "aggregated") process.stdout.write(`servelab worker: ${disagg.summary}\n`);
      for (const s of worker.kvEventSources)
        process.stdout.write(
          `servelab worker: KV events${s.dpRank === null ? "" : ` of dp rank ${s.dpRank}`} on ${s.endpoint}` +
            `${s.replayEndpoint ? `, replay on ${s.replayEndpoint}` : ""}, topic ${JSON.stringify(s.topic)}\n`,
        );
      const signal = await waitForStopSignal();
      process.stdout.write(
        `servelab worker: ${signal}, shutting down (${worker.inFlight()} requests in flight)\n`,
      );
      await worker.close();
      await tokenizer.close();
    });
}
