import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { ServelabError } from "../errors.ts";
import { engineSchema } from "../recipe/engine-schema.ts";

/** The engine flags `servelab worker` takes, whatever name they were given under. */
export interface EngineFlagValues {
  model?: string | undefined;
  dpSize?: number | undefined;
  maxBatchSize?: number | undefined;
  maxNumTokens?: number | undefined;
  kvBlocks?: number | undefined;
  blockSize?: number | undefined;
  prefixCaching?: boolean | undefined;
  chunkedPrefill?: boolean | undefined;
}

/** Dynamo mocker's flag names (`python -m dynamo.mocker`), and the servelab flag each one is. */
export const MOCKER_ALIASES = {
  modelPath: "model",
  dataParallelSize: "dpSize",
  maxNumSeqs: "maxBatchSize",
  maxNumBatchedTokens: "maxNumTokens",
  numGpuBlocksOverride: "kvBlocks",
  enablePrefixCaching: "prefixCaching",
  enableChunkedPrefill: "chunkedPrefill",
} as const satisfies Record<string, keyof EngineFlagValues>;

const dashed = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * A TensorRT-LLM engine YAML (`--extra-engine-args`, as Dynamo's TRT-LLM worker takes it) as worker flags: only the
 * keys the file sets, checked against the recipe's engine schema (unknown keys and bad values are errors naming
 * the file and key).
 */
export async function engineArgsFlags(file: string): Promise<EngineFlagValues> {
  let raw: unknown;
  try {
    raw = parse((await readFile(file, "utf8")).replace(/^\uFEFF/, ""), { maxAliasCount: 100 });
  } catch (e) {
    throw new ServelabError("RECIPE_PARSE", `--extra-engine-args ${file}: ${(e as Error).message}`);
  }
  if (raw === null || raw === undefined) raw = {};
  const checked = engineSchema.safeParse(raw);
  if (!checked.success)
    throw new ServelabError(
      "RECIPE_INVALID",
      `--extra-engine-args ${file} is not a valid TensorRT-LLM engine configuration`,
      checked.error.issues.map((i) => {
        const keys = "keys" in i && Array.isArray(i.keys) ? `: ${i.keys.join(", ")}` : "";
        return `${i.path.join(".") || "(top)"}${keys}: ${i.message}`;
      }),
    );
  const set = raw as Record<string, unknown> & { kv_cache_config?: Record<string, unknown> };
  const e = checked.data;
  const out: EngineFlagValues = {};
  if ("max_batch_size" in set) out.maxBatchSize = e.max_batch_size;
  if ("max_num_tokens" in set) out.maxNumTokens = e.max_num_tokens;
  if ("enable_chunked_prefill" in set) out.chunkedPrefill = e.enable_chunked_prefill;
  if (set.kv_cache_config && "enable_block_reuse" in set.kv_cache_config)
    out.prefixCaching = e.kv_cache_config.enable_block_reuse;
  if (set.kv_cache_config && "tokens_per_block" in set.kv_cache_config)
    out.blockSize = e.kv_cache_config.tokens_per_block;
  // Attention DP over the tensor-parallel ranks: one DP rank per GPU.
  if ("enable_attention_dp" in set || "tensor_parallel_size" in set)
    out.dpSize = e.enable_attention_dp ? e.tensor_parallel_size : 1;
  return out;
}

/**
 * Folds Dynamo mocker's names and `--extra-engine-args` into servelab's flags. A flag given under both names is an
 * error; a servelab or mocker flag overrides what the engine YAML says.
 */
export async function withMockerFlags(
  o: EngineFlagValues & { [K in keyof typeof MOCKER_ALIASES]?: unknown } & {
    extraEngineArgs?: string | undefined;
    disaggregationMode?: string | undefined;
    kvTransferBandwidth?: number | undefined;
  },
): Promise<EngineFlagValues> {
  // The worker's role and KV hand-over flags are resolved apart (serve/disagg/worker-mode.ts).
  const out: EngineFlagValues =
    o.extraEngineArgs === undefined ? {} : await engineArgsFlags(o.extraEngineArgs);
  const own: (keyof EngineFlagValues)[] = [
    "model",
    "dpSize",
    "maxBatchSize",
    "maxNumTokens",
    "kvBlocks",
    "blockSize",
    "prefixCaching",
    "chunkedPrefill",
  ];
  for (const key of own) if (o[key] !== undefined) Object.assign(out, { [key]: o[key] });
  for (const [alias, key] of Object.entries(MOCKER_ALIASES) as [
    keyof typeof MOCKER_ALIASES,
    keyof EngineFlagValues,
  ][]) {
    const v = o[alias];
    if (v === undefined) continue;
    if (o[key] !== undefined)
      throw new ServelabError("USAGE", `${dashed(alias)} and ${dashed(key)} are the same setting; give one`);
    Object.assign(out, { [key]: v });
  }
  return out;
}
