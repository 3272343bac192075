import {
  type DisaggContext,
  DisaggProtocolError,
  describe,
  isLoopbackHost,
  isRecord,
  type JsonObject,
  prefillChoice,
  requireBody,
  type SequentialDisaggProtocol,
} from "./protocol.ts";

/*
 * vLLM with the NixlConnector in pull mode (live-frontend.md §5.1; vLLM's toy_proxy_server): the prefill worker
 * runs the prompt for one token and answers with `kv_transfer_params` naming where the KV lives; the decode
 * worker gets the client's own body plus those params, pulls the blocks and streams the whole answer.
 */

/** The prefill leg's request params, every field spelled out as vLLM's proxy sends them. */
export const PREFILL_KV_TRANSFER_PARAMS = {
  do_remote_decode: true,
  do_remote_prefill: false,
  remote_engine_id: null,
  remote_block_ids: null,
  remote_host: null,
  remote_port: null,
} as const;

const NAME = "vllm-nixl";

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isIntList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => isInt(x) && x >= 0);

/**
 * Field checks for the `kv_transfer_params` vLLM versions agree on; every other field (`remote_num_tokens`,
 * `remote_blocks_expiry_time`, `transfer_mode`, Mooncake's `remote_ptp_size`, …) passes through untouched. Block
 * ids are a list, or one list per KV-cache group (hybrid models).
 */
const KNOWN_FIELDS: Record<string, { ok: (v: unknown) => boolean; expected: string }> = {
  do_remote_prefill: { ok: (v) => typeof v === "boolean", expected: "a boolean" },
  do_remote_decode: { ok: (v) => typeof v === "boolean", expected: "a boolean" },
  remote_engine_id: { ok: (v) => typeof v === "string" && v !== "", expected: "a non-empty string" },
  remote_request_id: { ok: (v) => typeof v === "string" && v !== "", expected: "a non-empty string" },
  remote_host: { ok: (v) => typeof v === "string" && v.trim() !== "", expected: "a host name or address" },
  remote_port: { ok: (v) => isInt(v) && v > 0 && v <= 65535, expected: "a port number" },
  tp_size: { ok: (v) => isInt(v) && v >= 1, expected: "a positive integer" },
  remote_num_tokens: { ok: (v) => isInt(v) && v >= 0, expected: "a non-negative integer" },
  remote_block_ids: {
    ok: (v) => isIntList(v) || (Array.isArray(v) && v.length > 0 && v.every(isIntList)),
    expected: "a list of block ids (or one list per KV-cache group)",
  },
};

/** Problems with a `kv_transfer_params` object's known fields, one line each (empty when it is well formed). */
export function kvTransferParamsProblems(params: JsonObject, at = "kv_transfer_params"): string[] {
  const problems: string[] = [];
  for (const [key, check] of Object.entries(KNOWN_FIELDS)) {
    const v = params[key];
    if (v === undefined || v === null) continue;
    if (!check.ok(v)) problems.push(`${at}.${key} must be ${check.expected}, got ${JSON.stringify(v)}`);
  }
  return problems;
}

export function vllmNixlProtocol(): SequentialDisaggProtocol {
  return {
    name: NAME,
    concurrent: false,

    prefillRequest(body: JsonObject): JsonObject {
      const p: JsonObject = { ...requireBody(body) };
      p.kv_transfer_params = { ...PREFILL_KV_TRANSFER_PARAMS };
      p.stream = false;
      p.max_tokens = 1;
      if (p.max_completion_tokens !== undefined && p.max_completion_tokens !== null)
        p.max_completion_tokens = 1;
      // Unary, so no stream options; a one-token leg cannot honour a minimum (the decode leg restores both).
      delete p.stream_options;
      delete p.min_tokens;
      delete p.min_completion_tokens;
      return p;
    },

    handoff(prefillResponse: unknown, original: JsonObject, ctx: DisaggContext): JsonObject {
      const body = requireBody(original);
      prefillChoice(NAME, prefillResponse);
      const params = (prefillResponse as JsonObject).kv_transfer_params;
      const decode: JsonObject = { ...body };
      delete decode.kv_transfer_params;
      // The prefill worker gives no params when its one token ended the request (EOS or a stop string): the
      // decode worker then prefills the prompt itself, as vLLM's proxy has it do.
      if (params === undefined || params === null) return decode;
      if (!isRecord(params))
        throw new DisaggProtocolError(NAME, `kv_transfer_params must be an object, got ${describe(params)}`);
      const problems = kvTransferParamsProblems(params);
      if (problems.length > 0) throw new DisaggProtocolError(NAME, problems.join("; "));
      const copy: JsonObject = { ...params };
      // A prefill worker that advertises only a loopback side channel is reachable at the address the frontend
      // used for it (production-stack's rewrite); on one host the two are the same and nothing changes.
      if (
        typeof copy.remote_host === "string" &&
        isLoopbackHost(copy.remote_host) &&
        !isLoopbackHost(ctx.prefill.host)
      )
        copy.remote_host = ctx.prefill.host.replace(/^\[(.*)\]$/, "$1");
      decode.kv_transfer_params = copy;
      return decode;
    },
  };
}
