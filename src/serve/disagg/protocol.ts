import type { Rng } from "../../random.ts";
import { ApiError } from "../openai-errors.ts";
import type { Endpoint } from "../openai-request.ts";

/*
 * How a frontend drives one request through a prefill worker and a decode worker over OpenAI-compatible HTTP
 * (live-frontend.md §5). The engines differ in what they expect on each leg; the frontend keeps one code path and
 * asks an adapter for the bodies:
 *
 * - sequential (vLLM + NIXL, TensorRT-LLM): send `prefillRequest(body)` to the prefill worker and wait for its
 *   unary answer; `handoff(answer, body)` is the decode leg, or null when the prefill answer is already final.
 * - concurrent (SGLang): `legs(body)` gives both bodies, sent at the same time; the decode worker's response is
 *   the client's, the prefill worker's is read, checked (`checkPrefillResponse`) and dropped.
 *
 * Adapters are pure: no I/O, no clock; the only randomness (SGLang's bootstrap room) comes from `ctx.rng`. Bodies
 * may hold 64-bit integers as bigint (the room, TRT-LLM's request id): send them with `encodeBody`.
 */

export type JsonObject = Record<string, unknown>;

export type DisaggProtocolName = "vllm-nixl" | "sglang" | "trtllm";

export interface DisaggContext {
  endpoint: Endpoint;
  /**
   * The prefill worker as the frontend reaches it. SGLang's decode worker connects to `host` for the KV
   * (`bootstrap_host`); vLLM's `remote_host` is replaced by it when the worker advertised only a loopback name.
   */
  prefill: { host: string; bootstrapPort?: number };
  /** Draws SGLang's bootstrap room. */
  rng: Rng;
  /** TensorRT-LLM ≥ 1.1 correlates both legs by `disaggregated_params.disagg_request_id`; absent: not sent. */
  disaggRequestId?: bigint | number;
}

interface ProtocolBase {
  readonly name: DisaggProtocolName;
}

export interface SequentialDisaggProtocol extends ProtocolBase {
  readonly concurrent: false;
  /** The body for the prefill worker (a copy; `body` is not changed). */
  prefillRequest(body: JsonObject, ctx: DisaggContext): JsonObject;
  /**
   * The body for the decode worker, built from the prefill worker's parsed JSON answer and the client's
   * original body; null when the prefill answer is the final one (send it to the client as it is). Throws
   * DisaggProtocolError when the answer is not what the protocol promises.
   */
  handoff(prefillResponse: unknown, original: JsonObject, ctx: DisaggContext): JsonObject | null;
}

export interface ConcurrentDisaggProtocol extends ProtocolBase {
  readonly concurrent: true;
  /** Both legs, sent together; they share one rendezvous (SGLang: the same bootstrap room). */
  legs(body: JsonObject, ctx: DisaggContext): { prefill: JsonObject; decode: JsonObject };
  /** Checks the prefill worker's parsed answer, which is otherwise discarded: an error answer throws. */
  checkPrefillResponse(prefillResponse: unknown): void;
}

export type DisaggProtocol = SequentialDisaggProtocol | ConcurrentDisaggProtocol;

/**
 * An engine answered the prefill leg with something the protocol does not allow. A frontend answers its client
 * with `status` (502: the upstream's fault, not the client's) and this message in OpenAI's error envelope.
 */
export class DisaggProtocolError extends ApiError {
  readonly protocol: DisaggProtocolName;

  constructor(protocol: DisaggProtocolName, message: string) {
    super(502, `${protocol} disaggregation: ${message}`, { code: "bad_prefill_response" });
    this.name = "DisaggProtocolError";
    this.protocol = protocol;
  }
}

export function isRecord(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export const describe = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** The client body, checked to be an object: the frontend validated it, so anything else is a caller's bug. */
export function requireBody(body: unknown): JsonObject {
  if (!isRecord(body))
    throw new ApiError(400, `the request body must be a JSON object, got ${describe(body)}`);
  return body;
}

/**
 * An error answer in either shape an engine uses: OpenAI's `{"error": {...}}`, vLLM/TRT-LLM's `{"error": "text"}`,
 * or Dynamo's older flat `{"message", "type", "code"}` without choices. Null when the body is not one.
 */
export function errorMessageOf(body: JsonObject): string | null {
  const e = body.error;
  if (typeof e === "string") return e;
  if (isRecord(e)) return typeof e.message === "string" ? e.message : JSON.stringify(e);
  if (e !== undefined && e !== null) return JSON.stringify(e);
  if (body.choices === undefined && typeof body.message === "string") return body.message;
  return null;
}

/**
 * The one choice of a unary prefill answer (every adapter sends one prompt, `n` 1), after the checks every
 * protocol shares: a JSON object, not an error, exactly one choice whose `finish_reason` is a string or null.
 */
export function prefillChoice(protocol: DisaggProtocolName, response: unknown): JsonObject {
  if (!isRecord(response))
    throw new DisaggProtocolError(
      protocol,
      `the prefill response is not a JSON object (got ${describe(response)})`,
    );
  const err = errorMessageOf(response);
  if (err !== null)
    throw new DisaggProtocolError(protocol, `the prefill worker answered with an error: ${err}`);
  const choices = response.choices;
  if (!Array.isArray(choices) || choices.length !== 1)
    throw new DisaggProtocolError(
      protocol,
      `the prefill response must hold exactly one choice, got ${Array.isArray(choices) ? choices.length : describe(choices)}`,
    );
  const choice = choices[0];
  if (!isRecord(choice))
    throw new DisaggProtocolError(protocol, `the prefill response's choices[0] is not an object`);
  const finish = choice.finish_reason;
  if (finish !== undefined && finish !== null && typeof finish !== "string")
    throw new DisaggProtocolError(
      protocol,
      `choices[0].finish_reason must be a string, got ${describe(finish)}`,
    );
  return choice;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\]|0\.0\.0\.0|::|\[::\])$/i;

/** A host name only this machine can reach (or a wildcard a server bound to, which no peer can dial). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host.trim());
}

/** A bare IPv6 address in brackets, as a URL or SGLang's `bootstrap_host` needs it; other hosts unchanged. */
export function bracketIpv6(host: string): string {
  const h = host.trim();
  return h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
}

/** A uniform integer in [0, 2^63 − 1] from 31 + 32 random bits: SGLang's `random.randint(0, 2**63 - 1)`. */
export function bootstrapRoom(rng: Rng): bigint {
  const hi = rng.int(2 ** 31);
  const lo = rng.int(2 ** 32);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * JSON text of a request body, writing bigint values as exact integer literals (JSON.stringify refuses them, and
 * a 63-bit room does not survive a double). Anything JSON cannot hold (functions, symbols, non-finite numbers)
 * is refused, not silently dropped.
 */
export function encodeBody(value: unknown): string {
  const out: string[] = [];
  const write = (v: unknown, at: string): void => {
    if (v === null) out.push("null");
    else if (typeof v === "bigint") out.push(v.toString());
    else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new RangeError(`${at} is ${v}, which JSON cannot hold`);
      out.push(JSON.stringify(v));
    } else if (typeof v === "string" || typeof v === "boolean") out.push(JSON.stringify(v));
    else if (Array.isArray(v)) {
      out.push("[");
      v.forEach((x, i) => {
        if (i > 0) out.push(",");
        write(x === undefined ? null : x, `${at}[${i}]`);
      });
      out.push("]");
    } else if (isRecord(v)) {
      out.push("{");
      let first = true;
      for (const [k, x] of Object.entries(v)) {
        if (x === undefined) continue;
        if (!first) out.push(",");
        first = false;
        out.push(JSON.stringify(k), ":");
        write(x, `${at}.${k}`);
      }
      out.push("}");
    } else throw new RangeError(`${at} is a ${typeof v}, which JSON cannot hold`);
  };
  write(value, "body");
  return out.join("");
}
