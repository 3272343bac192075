import {
  bootstrapRoom,
  bracketIpv6,
  type ConcurrentDisaggProtocol,
  type DisaggContext,
  DisaggProtocolError,
  describe,
  errorMessageOf,
  isRecord,
  type JsonObject,
  requireBody,
} from "./protocol.ts";

/*
 * SGLang's prefill/decode split (live-frontend.md §5.2; SGLang's mini_lb): both workers get the client's body
 * plus the same `bootstrap_host` / `bootstrap_port` / `bootstrap_room` at once; the prefill worker stops after
 * the prompt by its own `--disaggregation-mode`, so no `max_tokens` rewrite. The decode worker's answer is the
 * client's.
 */

/** A prefill server's `--disaggregation-bootstrap-port` default. */
export const DEFAULT_BOOTSTRAP_PORT = 8998;

const NAME = "sglang";

export function sglangProtocol(): ConcurrentDisaggProtocol {
  return {
    name: NAME,
    concurrent: true,

    legs(body: JsonObject, ctx: DisaggContext) {
      const b = requireBody(body);
      const host = ctx.prefill.host.trim();
      if (host === "") throw new RangeError("the prefill worker's host must not be empty");
      const port = ctx.prefill.bootstrapPort ?? DEFAULT_BOOTSTRAP_PORT;
      if (!Number.isSafeInteger(port) || port < 1 || port > 65535)
        throw new RangeError(`the bootstrap port must be in [1, 65535], got ${port}`);
      const rendezvous = {
        bootstrap_host: bracketIpv6(host),
        bootstrap_port: port,
        bootstrap_room: bootstrapRoom(ctx.rng),
      };
      return { prefill: { ...b, ...rendezvous }, decode: { ...b, ...rendezvous } };
    },

    checkPrefillResponse(prefillResponse: unknown): void {
      // A streamed prefill answer reaches here as null (nothing to parse): only an explicit error counts.
      if (prefillResponse === null || prefillResponse === undefined) return;
      if (!isRecord(prefillResponse))
        throw new DisaggProtocolError(
          NAME,
          `the prefill response is not a JSON object (got ${describe(prefillResponse)})`,
        );
      const err = errorMessageOf(prefillResponse);
      if (err !== null)
        throw new DisaggProtocolError(NAME, `the prefill worker answered with an error: ${err}`);
    },
  };
}
