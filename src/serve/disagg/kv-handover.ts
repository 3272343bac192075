import { ApiError, invalidParam } from "../openai-errors.ts";
import { describe, isRecord } from "./protocol.ts";
import { kvTransferParamsProblems } from "./vllm-nixl.ts";

/*
 * The mock worker's side of vLLM's NIXL hand-over (live-frontend.md §5.1), as `servelab worker
 * --disaggregation-mode prefill|decode` serves it: what a request's `kv_transfer_params` asks, what a prefill
 * worker answers, how long a decode worker waits for the KV. Pure; the timers and calls are in kv-lease.ts.
 */

export const DISAGGREGATION_MODES = ["aggregated", "prefill", "decode"] as const;
export type DisaggregationMode = (typeof DISAGGREGATION_MODES)[number];

/** Dynamo mocker's `--kv-transfer-bandwidth` default, GB/s (dynamo-spec.md §3.1), for a worker without a recipe. */
export const DEFAULT_KV_TRANSFER_BANDWIDTH_GBPS = 64;
/**
 * How long a prefill worker keeps a finished request's blocks for a decode worker that never reads them:
 * `VLLM_NIXL_ABORT_REQUEST_TIMEOUT`, 480 s in the vLLM versions read (live-frontend.md §5.1; newer releases
 * lease 30 s at a time, extended by the decode worker's heartbeats, which this mock does not send).
 */
export const DEFAULT_KV_LEASE_S = 480;

/** Path on a mock prefill worker that a decode worker calls once it has read a request's blocks. */
export const KV_RELEASE_PATH = "/servelab/kv/release";

export interface KvTransferSettings {
  /** Hand-over bandwidth, GB/s (1e9 bytes per second). */
  bandwidthGBps: number;
  /** KV bytes one prompt token takes (all layers), what the hand-over moves. */
  bytesPerToken: number;
  /** Modelled seconds a prefill worker holds unread blocks. Default DEFAULT_KV_LEASE_S. */
  leaseS?: number;
}

export function validateKvTransferSettings(s: KvTransferSettings): void {
  if (!(s.bandwidthGBps > 0 && Number.isFinite(s.bandwidthGBps)))
    throw new RangeError(`KV transfer bandwidth must be a positive number of GB/s, got ${s.bandwidthGBps}`);
  if (!(Number.isSafeInteger(s.bytesPerToken) && s.bytesPerToken > 0))
    throw new RangeError(`KV bytes per token must be a positive integer, got ${s.bytesPerToken}`);
  if (s.leaseS !== undefined && !(s.leaseS > 0 && Number.isFinite(s.leaseS)))
    throw new RangeError(`the KV lease must be a positive number of seconds, got ${s.leaseS}`);
}

/** Modelled milliseconds to move `tokens` tokens' KV: bytes over bandwidth (GB/s = 1e6 bytes per ms). */
export function kvTransferMs(tokens: number, s: KvTransferSettings): number {
  return (tokens * s.bytesPerToken) / (s.bandwidthGBps * 1e6);
}

/** Where a decode worker finds a prompt's KV: the prefill worker's answer, copied by the frontend. */
export interface RemotePrefill {
  engineId: string;
  requestId: string;
  host: string;
  port: number;
  /** Blocks the prefill worker holds for this request (the first group's, for per-group lists). */
  blocks: number;
  /** Prompt tokens the prefill worker computed, when it says. */
  numTokens: number | null;
  /** A servelab prefill worker takes the "read" notice on its HTTP port. */
  httpSideChannel: boolean;
}

export type KvTransferRequest =
  | { kind: "none" }
  /** The prefill leg: compute the prompt, answer with where its KV is. */
  | { kind: "remote-decode" }
  /** The decode leg: the prompt's KV is on another worker. */
  | { kind: "remote-prefill"; remote: RemotePrefill };

const PARAM = "kv_transfer_params";

function required<T>(params: Record<string, unknown>, key: string): T {
  const v = params[key];
  if (v === undefined || v === null)
    throw invalidParam(
      `${PARAM}.${key}`,
      `'${PARAM}.${key}' is required when do_remote_prefill is true`,
      "missing_required_parameter",
    );
  return v as T;
}

/**
 * What a request's `kv_transfer_params` asks for. Malformed params are the client's (the frontend's) fault:
 * ApiError 400 naming the field. Absent, null, or with neither `do_remote_*` flag set: nothing to hand over.
 */
export function parseKvTransferParams(body: Record<string, unknown>): KvTransferRequest {
  const params = body[PARAM];
  if (params === undefined || params === null) return { kind: "none" };
  if (!isRecord(params))
    throw invalidParam(PARAM, `'${PARAM}' must be an object, got ${describe(params)}`, "invalid_type");
  const problems = kvTransferParamsProblems(params);
  if (problems.length > 0) {
    const field = /^(\S+) must/.exec(problems[0]!)?.[1] ?? PARAM;
    throw invalidParam(field, problems.join("; "));
  }
  const decode = params.do_remote_decode === true;
  const prefill = params.do_remote_prefill === true;
  if (decode && prefill)
    throw invalidParam(
      PARAM,
      `'${PARAM}' sets both do_remote_decode and do_remote_prefill; a leg is one or the other`,
    );
  if (decode) return { kind: "remote-decode" };
  if (!prefill) return { kind: "none" };
  const ids = required<unknown[]>(params, "remote_block_ids");
  const first = ids.length > 0 && Array.isArray(ids[0]) ? (ids[0] as unknown[]) : ids;
  return {
    kind: "remote-prefill",
    remote: {
      engineId: required<string>(params, "remote_engine_id"),
      requestId: required<string>(params, "remote_request_id"),
      host: required<string>(params, "remote_host"),
      port: required<number>(params, "remote_port"),
      blocks: first.length,
      numTokens: typeof params.remote_num_tokens === "number" ? params.remote_num_tokens : null,
      httpSideChannel: params.servelab_side_channel === "http",
    },
  };
}

/**
 * Prompt tokens whose KV a decode worker receives for a prompt of `isl` tokens in `blockSize`-token blocks:
 * every block the prefill worker lists, capped at the prompt. Refuses (400) params that cannot describe this
 * prompt: more blocks than it fills, or a token count of another prompt.
 */
export function receivedTokens(remote: RemotePrefill, isl: number, blockSize: number): number {
  const blocks = Math.ceil(isl / blockSize);
  if (remote.blocks > blocks)
    throw invalidParam(
      `${PARAM}.remote_block_ids`,
      `'${PARAM}.remote_block_ids' lists ${remote.blocks} blocks, but the prompt's ${isl} tokens fill ${blocks} blocks of ${blockSize}`,
    );
  if (remote.numTokens !== null && remote.numTokens !== isl)
    throw invalidParam(
      `${PARAM}.remote_num_tokens`,
      `'${PARAM}.remote_num_tokens' is ${remote.numTokens}, but this request's prompt has ${isl} tokens: the KV is another prompt's`,
    );
  return Math.min(isl, remote.blocks * blockSize);
}

/** The `kv_transfer_params` a prefill worker answers with (vLLM NixlConnector's fields, plus servelab's own). */
export function prefillAnswerParams(o: {
  engineId: string;
  requestId: string;
  host: string;
  port: number;
  blockIds: number[];
  promptTokens: number;
}): Record<string, unknown> {
  return {
    do_remote_prefill: true,
    do_remote_decode: false,
    remote_block_ids: o.blockIds,
    remote_engine_id: o.engineId,
    remote_request_id: o.requestId,
    remote_host: o.host,
    remote_port: o.port,
    tp_size: 1,
    remote_num_tokens: o.promptTokens,
    // A real vLLM side channel is ZMQ on its own port; a servelab prefill worker's is its HTTP port.
    servelab_side_channel: "http",
  };
}

/** What the request log says about a request's hand-over. */
export type KvTransferLog =
  | {
      role: "prefill";
      tokens: number;
      blocks: number;
      /** Whether the prefill worker could pin the blocks (false only when its KV was too full to). */
      held: boolean;
      lease_ms: number;
    }
  | {
      role: "decode";
      remote_engine_id: string;
      remote_request_id: string;
      /** Prompt tokens whose KV came over; the rest (if any) was prefilled here. */
      tokens: number;
      bytes: number;
      /** The modelled transfer time; the worker waited this divided by its speed-up ratio. */
      modelled_ms: number;
    };

/** The body of a decode worker's "read" notice; ApiError 400 for anything else. */
export function parseReleaseBody(body: unknown): { engineId: string; requestId: string } {
  if (!isRecord(body)) throw new ApiError(400, `the body must be a JSON object, got ${describe(body)}`);
  const engineId = body.remote_engine_id;
  const requestId = body.remote_request_id;
  if (typeof engineId !== "string" || engineId === "")
    throw invalidParam("remote_engine_id", "'remote_engine_id' must be a non-empty string");
  if (typeof requestId !== "string" || requestId === "")
    throw invalidParam("remote_request_id", "'remote_request_id' must be a non-empty string");
  return { engineId, requestId };
}
