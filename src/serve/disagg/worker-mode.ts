import { ServelabError } from "../../errors.ts";
import type { GroupRole, Recipe } from "../../recipe/schema.ts";
import {
  DEFAULT_KV_LEASE_S,
  DEFAULT_KV_TRANSFER_BANDWIDTH_GBPS,
  type DisaggregationMode,
  type KvTransferSettings,
} from "./kv-handover.ts";

/** `servelab worker`'s disaggregation flags as given (Dynamo's names, plus the lease). */
export interface DisaggFlags {
  disaggregationMode?: string | undefined;
  kvTransferBandwidth?: number | undefined;
  kvBytesPerToken?: number | undefined;
  kvLeaseSeconds?: number | undefined;
  group?: GroupRole | undefined;
}

export interface WorkerDisagg {
  mode: DisaggregationMode;
  /** The recipe group whose engine the worker takes (the mode's own group when none was named). */
  group?: GroupRole;
  kvTransfer?: KvTransferSettings;
  /** For the startup line: what the hand-over is modelled with and where each figure came from. */
  summary: string;
}

/** Every spelling Dynamo's workers take: vLLM/SGLang say prefill|decode, TensorRT-LLM prefill_and_decode. */
const MODE_NAMES: Record<string, DisaggregationMode> = {
  aggregated: "aggregated",
  agg: "aggregated",
  prefill_and_decode: "aggregated",
  prefill: "prefill",
  decode: "decode",
};

const GROUP_MODE: Record<GroupRole, DisaggregationMode> = {
  workers: "aggregated",
  prefill: "prefill",
  decode: "decode",
};

const usage = (message: string) => new ServelabError("USAGE", message);

/**
 * The worker's role and KV hand-over model. With a recipe, the bandwidth is the GPU's NVLink bandwidth and the
 * bytes per token the model's, as `servelab sim` charges a hand-over; without one, Dynamo mocker's 64 GB/s and
 * the bytes per token must be given. Flags override either.
 */
export function resolveWorkerDisagg(flags: DisaggFlags, recipe?: Recipe): WorkerDisagg {
  let mode: DisaggregationMode | undefined;
  if (flags.disaggregationMode !== undefined) {
    mode = MODE_NAMES[flags.disaggregationMode.trim().toLowerCase()];
    if (mode === undefined)
      throw usage(
        `--disaggregation-mode ${flags.disaggregationMode}: expected prefill, decode or aggregated (also agg, prefill_and_decode)`,
      );
  }
  if (flags.group !== undefined && mode !== undefined && GROUP_MODE[flags.group] !== mode)
    throw usage(
      `--group ${flags.group} is a ${GROUP_MODE[flags.group]} group, but --disaggregation-mode says ${mode}; give one or make them agree`,
    );
  mode ??= flags.group === undefined ? "aggregated" : GROUP_MODE[flags.group];
  const group: GroupRole | undefined =
    flags.group ?? (recipe !== undefined && mode !== "aggregated" ? mode : undefined);

  if (mode === "aggregated") {
    const stray = [
      flags.kvTransferBandwidth !== undefined && "--kv-transfer-bandwidth",
      flags.kvBytesPerToken !== undefined && "--kv-bytes-per-token",
      flags.kvLeaseSeconds !== undefined && "--kv-lease-seconds",
    ].filter(Boolean);
    if (stray.length > 0)
      throw usage(`${stray.join(", ")} only matter for a prefill or decode worker (--disaggregation-mode)`);
    return { mode, ...(group === undefined ? {} : { group }), summary: "aggregated" };
  }

  const bandwidth = flags.kvTransferBandwidth ?? recipe?.hardware.nvlink.bandwidth_gb_per_s;
  const bandwidthFrom =
    flags.kvTransferBandwidth !== undefined ? "flag" : recipe ? "recipe NVLink" : "Dynamo mocker default";
  const bytesPerToken = flags.kvBytesPerToken ?? recipe?.model.kv_cache_bytes_per_token;
  if (bytesPerToken === undefined)
    throw usage(
      `a ${mode} worker without --recipe needs --kv-bytes-per-token: the KV bytes one prompt token takes over all layers (43188 for DeepSeek-V3.2 in TensorRT-LLM's FP8 layout, the founding recipe's figure)`,
    );
  const kvTransfer: KvTransferSettings = {
    bandwidthGBps: bandwidth ?? DEFAULT_KV_TRANSFER_BANDWIDTH_GBPS,
    bytesPerToken,
    leaseS: flags.kvLeaseSeconds ?? DEFAULT_KV_LEASE_S,
  };
  const what =
    mode === "prefill"
      ? `prefill worker, blocks held up to ${kvTransfer.leaseS} s for the decode worker`
      : "decode worker";
  return {
    mode,
    ...(group === undefined ? {} : { group }),
    kvTransfer,
    summary: `${what}; KV hand-over at ${kvTransfer.bandwidthGBps} GB/s (${bandwidthFrom}), ${bytesPerToken} bytes per token (${flags.kvBytesPerToken !== undefined ? "flag" : "recipe model"})`,
  };
}
