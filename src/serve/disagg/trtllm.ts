import {
  type DisaggContext,
  DisaggProtocolError,
  describe,
  isRecord,
  type JsonObject,
  prefillChoice,
  requireBody,
  type SequentialDisaggProtocol,
} from "./protocol.ts";

/*
 * TensorRT-LLM's disaggregated server (live-frontend.md §5.3; trtllm-serve's openai_disagg_server): a
 * `context_only` request to a context server, whose answer carries `choices[0].disaggregated_params` (the KV's
 * opaque handle) and `prompt_token_ids`; then the original body to a generation server with those params as
 * `generation_only` and the prompt as token ids, so the generation server does not tokenize again.
 */

/** Finish reasons that leave generation to the generation server; any other ends the request at the context step. */
const CONTINUES = new Set(["length", "not_finished"]);

const NAME = "trtllm";

export interface TrtllmProtocolOptions {
  /** Also cap the context leg at one token, as TensorRT-LLM's disagg server did before 1.0. Default false. */
  contextMaxTokensOne?: boolean;
}

const isTokenList = (v: unknown): v is number[] =>
  Array.isArray(v) &&
  v.length > 0 &&
  v.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0);

export function trtllmProtocol(opts: TrtllmProtocolOptions = {}): SequentialDisaggProtocol {
  return {
    name: NAME,
    concurrent: false,

    prefillRequest(body: JsonObject, ctx: DisaggContext): JsonObject {
      const p: JsonObject = { ...requireBody(body) };
      p.disaggregated_params = {
        request_type: "context_only",
        ...(ctx.disaggRequestId === undefined ? {} : { disagg_request_id: ctx.disaggRequestId }),
      };
      p.stream = false;
      p.stream_options = null;
      if (opts.contextMaxTokensOne) p.max_tokens = 1;
      return p;
    },

    handoff(prefillResponse: unknown, original: JsonObject, ctx: DisaggContext): JsonObject | null {
      const body = requireBody(original);
      const choice = prefillChoice(NAME, prefillResponse);
      const finish = choice.finish_reason;
      if (typeof finish === "string" && !CONTINUES.has(finish)) return null;
      const params = choice.disaggregated_params;
      if (!isRecord(params))
        throw new DisaggProtocolError(
          NAME,
          `a context response that continues (finish_reason ${JSON.stringify(finish ?? null)}) must carry choices[0].disaggregated_params, got ${describe(params)}`,
        );
      if (
        params.first_gen_tokens !== undefined &&
        params.first_gen_tokens !== null &&
        !isTokenList(params.first_gen_tokens)
      )
        throw new DisaggProtocolError(
          NAME,
          "disaggregated_params.first_gen_tokens must be a list of token ids",
        );
      if (
        params.ctx_request_id !== undefined &&
        params.ctx_request_id !== null &&
        !Number.isSafeInteger(params.ctx_request_id)
      )
        throw new DisaggProtocolError(NAME, "disaggregated_params.ctx_request_id must be an integer");
      if (
        params.encoded_opaque_state !== undefined &&
        params.encoded_opaque_state !== null &&
        typeof params.encoded_opaque_state !== "string"
      )
        throw new DisaggProtocolError(
          NAME,
          "disaggregated_params.encoded_opaque_state must be a base64 string",
        );
      const ids = (prefillResponse as JsonObject).prompt_token_ids;
      if (!isTokenList(ids))
        throw new DisaggProtocolError(
          NAME,
          `the context response must carry prompt_token_ids (a non-empty list of token ids), got ${describe(ids)}`,
        );
      const gen: JsonObject = {
        ...body,
        disaggregated_params: { ...params, request_type: "generation_only" },
      };
      // The generation server takes the context server's tokens, not its own tokenization of the text.
      if (ctx.endpoint === "completions") gen.prompt = ids;
      else gen.prompt_token_ids = ids;
      return gen;
    },
  };
}
