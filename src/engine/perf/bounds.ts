import { ServelabError } from "../../errors.ts";
import { type AicProfile, dsaSolMs } from "./aic-profile.ts";
import type { HostOverhead } from "./host-overhead.ts";
import type { TableOptions, TableVariant } from "./table.ts";

/**
 * Where the table profile's uncertain parameters are read: every one at its favourable end, at its nominal value,
 * or at its unfavourable end. "Optimistic" means faster steps for whichever arm runs them.
 */
export const PERF_BOUNDS = ["optimistic", "nominal", "pessimistic"] as const;
export type PerfBound = (typeof PERF_BOUNDS)[number];

/** Bounds for every parameter, with one parameter moved to another bound (a sensitivity run). */
export interface PerfSetting {
  bound: PerfBound;
  vary?: { parameter: string; bound: PerfBound };
}

export const NOMINAL: PerfSetting = { bound: "nominal" };

/**
 * What a parameter can change: the model's options and the deployment variant it prices; `idleDummyTokens` is the
 * context dummy an idle rank of this group could run (its `max_num_tokens` on a DEP prefill worker, else 0).
 */
interface Priced {
  options: TableOptions;
  variant: TableVariant;
  idleDummyTokens?: number;
}

export interface ProfileParameter {
  name: string;
  title: string;
  /** Its value at each bound, as a reader would want it printed. */
  values: (profile: AicProfile) => Record<PerfBound, string>;
  /** Where the nominal value and the range come from. */
  source: string;
  apply(bound: PerfBound, priced: Priced, profile: AicProfile): Priced;
}

/**
 * Host time per iteration (docs/calibration.md "Host time per iteration"): component costs measured in
 * TensorRT-LLM issues and pull requests (#10273, #16564, #11983, #13957, #15584, #17257), assembled per iteration.
 */
export const HOST_OVERHEAD: Record<PerfBound, HostOverhead> = {
  optimistic: {
    fixedMs: 0.3,
    perDecodeMs: 0.005,
    perChunkMs: 0.1,
    perPrefillTokenMs: 0.00002,
    metadataMs: 0,
  },
  nominal: { fixedMs: 1.0, perDecodeMs: 0.015, perChunkMs: 0.3, perPrefillTokenMs: 0.00005, metadataMs: 0 },
  pessimistic: {
    fixedMs: 2.5,
    perDecodeMs: 0.035,
    perChunkMs: 1.0,
    perPrefillTokenMs: 0.00015,
    metadataMs: 5,
  },
};

/** Chunks this long or longer are what prefill steps run (the recipes' token budgets are 8,192). */
const LONG_CHUNK_TOKENS = 2048;

/**
 * The lowest utilization (roofline / measured) among the collected DSA prefill points with chunks of at least
 * `LONG_CHUNK_TOKENS`: the pessimistic utilization of the attention work beyond the collected prefixes.
 */
export function lowestLongChunkUtilization(p: AicProfile): number {
  const c = p.dsaContext;
  let lowest = 1;
  for (const [pi, prefix] of c.prefix.entries())
    for (const [bi, batch] of c.batch.entries())
      for (const [ii, isl] of c.isl.entries()) {
        const ms = c.ms[pi]![bi]![ii];
        if (ms === null || ms === undefined || isl < LONG_CHUNK_TOKENS) continue;
        lowest = Math.min(lowest, dsaSolMs(p, batch, isl, prefix) / ms);
      }
  return lowest;
}

const fmtMs = (h: HostOverhead) =>
  `${h.fixedMs + h.metadataMs} ms + ${h.perDecodeMs * 1000} µs/decode + ${h.perChunkMs} ms/chunk + ${h.perPrefillTokenMs * 1e6} µs/1k tokens`;

export const PROFILE_PARAMETERS: readonly ProfileParameter[] = [
  {
    name: "attention_projections",
    title: "DSA attention projections' precision",
    values: () => ({
      optimistic: "fastest of NVFP4 / BF16 / mix, point by point",
      nominal: "checkpoint mix: BF16 rows with o_proj NVFP4",
      pessimistic: "slowest of the three",
    }),
    source:
      "nvidia/DeepSeek-V3.2-NVFP4 keeps q_a/q_b/kv_a/kv_b and the indexer in BF16, only o_proj NVFP4 (aic-gb200 SOURCE.md §2.1, §5 item 5); AIC measured the module with all-NVFP4 and all-BF16 projections, which bracket the mix",
    apply: (bound, { options, variant }) => ({
      options: {
        ...options,
        attention: bound === "nominal" ? "checkpoint" : bound === "optimistic" ? "fastest" : "slowest",
      },
      variant,
    }),
  },
  {
    name: "long_prefix_utilization",
    title: "utilization of prefill attention past the collected 128-token prefix",
    values: (p) => ({
      optimistic: "1.0 (peak)",
      nominal: "the nearest collected point's (AIC util-hold)",
      pessimistic: lowestLongChunkUtilization(p).toFixed(3),
    }),
    source:
      "AIC collected DSA prefill with cached prefixes of 0 and 128 tokens only (SOURCE.md §2.1, §5 item 1) and holds the nearest point's utilization; the range runs from peak to the lowest utilization measured for chunks of ≥ 2,048 tokens",
    apply: (bound, { options, variant }, p) => ({
      options: {
        ...options,
        longPrefixUtilization:
          bound === "nominal" ? "anchor" : bound === "optimistic" ? 1 : lowestLongChunkUtilization(p),
      },
      variant,
    }),
  },
  {
    name: "moe_beyond_grid",
    title: "routed-expert compute above 16,384 global tokens",
    values: () => ({
      optimistic: "utilization held (AIC)",
      nominal: "utilization held (AIC)",
      pessimistic: "utilization keeps falling at the last measured doubling's rate",
    }),
    source:
      "moe_trtllm.csv / moe_wideep.csv stop at 16,384 global tokens (SOURCE.md §5 item 2); measured utilization falls with tokens over the last points, so holding it is the favourable end",
    apply: (bound, { options, variant }) => ({
      options: { ...options, moeBeyondGrid: bound === "pessimistic" ? "trend" : "hold" },
      variant,
    }),
  },
  {
    name: "host_overhead",
    title: "host time per iteration (in series when disable_overlap_scheduler)",
    values: () => ({
      optimistic: fmtMs(HOST_OVERHEAD.optimistic),
      nominal: fmtMs(HOST_OVERHEAD.nominal),
      pessimistic: fmtMs(HOST_OVERHEAD.pessimistic),
    }),
    source:
      "no published DSV3.2 figure; component costs from TensorRT-LLM PRs #10273 (45 ms host step at ~1.5k requests/rank), #16564, #11983, #15584, #17257 and issue #13957 (docs/calibration.md)",
    apply: (bound, { options, variant }) => ({
      options: options.host
        ? { ...options, host: { ...options.host, overhead: HOST_OVERHEAD[bound] } }
        : options,
      variant,
    }),
  },
  {
    name: "prefill_idle_rank_dummy",
    title: "context dummies on idle ranks of DEP prefill workers",
    values: () => ({
      optimistic: "none",
      nominal: "none",
      pessimistic: "each idle rank runs a max_num_tokens dummy chunk while another rank prefills",
    }),
    source:
      "TensorRT-LLM py_executor `_pad_attention_dp_dummy_request` pads an idle ADP rank of a server with a KV transceiver with a context dummy of about max_num_tokens when new requests are context-only; newer versions gate it behind flags, so which one the recipe's image runs is unknown",
    apply: (bound, priced) => ({
      ...priced,
      options: {
        ...priced.options,
        idleRankContextDummy: bound === "pessimistic" ? (priced.idleDummyTokens ?? 0) : 0,
      },
    }),
  },
  {
    name: "pdl_factor",
    title: "AIC's 0.9 PDL factor on WideEP CUDA-graph decode steps",
    values: () => ({ optimistic: "0.9", nominal: "0.9", pessimistic: "1.0 (no discount)" }),
    source:
      "AIC applies an empirical 0.9 to every per-layer op of its large-EP decode graph (SOURCE.md §3.3, §5 item 6); not measured here, so it may not hold",
    apply: (bound, { options, variant }) => ({
      options,
      variant:
        variant.moeBackend === "WIDEEP" && bound === "pessimistic"
          ? { ...variant, graphLayerScale: 1 }
          : variant,
    }),
  },
];

/** Applies a setting: every parameter at the setting's bound, the varied one at its own. */
export function applySetting(setting: PerfSetting, priced: Priced, profile: AicProfile): Priced {
  let out = priced;
  for (const param of PROFILE_PARAMETERS) {
    const bound = setting.vary?.parameter === param.name ? setting.vary.bound : setting.bound;
    out = { ...out, ...param.apply(bound, out, profile) };
  }
  return out;
}

/** `nominal`, `pessimistic`, or `nominal, host_overhead pessimistic`. */
export function settingLabel(s: PerfSetting): string {
  return s.vary ? `${s.bound}, ${s.vary.parameter} ${s.vary.bound}` : s.bound;
}

/** Parses `--perf-bounds`: one bound, or a comma-separated list of them. */
export function parsePerfBounds(text: string): PerfBound[] {
  const bounds = text.split(",").map((b) => b.trim());
  for (const b of bounds)
    if (!(PERF_BOUNDS as readonly string[]).includes(b))
      throw new ServelabError(
        "USAGE",
        `--perf-bounds: ${JSON.stringify(b)} is not a bound; use ${PERF_BOUNDS.join(", ")} or a comma-separated list`,
      );
  if (new Set(bounds).size !== bounds.length)
    throw new ServelabError("USAGE", "--perf-bounds lists a bound twice");
  return bounds as PerfBound[];
}
