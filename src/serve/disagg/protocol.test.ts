import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { createRng, type Rng } from "../../random.ts";
import { ApiError } from "../openai-errors.ts";
import {
  bootstrapRoom,
  bracketIpv6,
  type DisaggContext,
  DisaggProtocolError,
  encodeBody,
  isLoopbackHost,
  type JsonObject,
} from "./protocol.ts";
import { sglangProtocol } from "./sglang.ts";
import { trtllmProtocol } from "./trtllm.ts";
import { vllmNixlProtocol } from "./vllm-nixl.ts";

// biome-ignore lint/suspicious/noExplicitAny: fixtures are free-form JSON read for assertions
type Fixture = Record<string, any>;

function fixture(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), "utf8"));
}

/** An Rng that returns the given integers in order, so a bootstrap room is known in advance. */
function scriptedRng(draws: number[]): Rng {
  const left = [...draws];
  return {
    next: () => 0,
    int: (n) => {
      const v = left.shift();
      assert.ok(v !== undefined && v < n, `unexpected draw below ${n}`);
      return v;
    },
  };
}

const ctx = (endpoint: "chat" | "completions", host = "127.0.0.1", extra: Partial<DisaggContext> = {}) => ({
  endpoint,
  prefill: { host },
  rng: createRng(1),
  ...extra,
});

function rejectsWith(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DisaggProtocolError, `expected DisaggProtocolError, got ${String(e)}`);
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 502);
    assert.equal(e.code, "bad_prefill_response");
    assert.match(e.message, pattern);
    return true;
  });
}

describe("vLLM NIXL adapter", () => {
  const p = vllmNixlProtocol();

  it("is sequential", () => assert.equal(p.concurrent, false));

  it("chat: one-token unary prefill leg without min_tokens or stream_options, then the original body with the params", () => {
    const f = fixture("vllm-nixl-chat");
    const before = structuredClone(f.client);
    assert.deepEqual(p.prefillRequest(f.client, ctx("chat")), f.prefill_request);
    assert.deepEqual(f.client, before, "the client's body is not changed");
    assert.deepEqual(p.handoff(f.prefill_response, f.client, ctx("chat", "10.0.0.12")), f.decode_request);
  });

  it("completions: max_tokens only, extra pull-mode fields passed through, a loopback side channel rewritten", () => {
    const f = fixture("vllm-nixl-completions");
    const pre = p.prefillRequest(f.client, ctx("completions"));
    assert.deepEqual(pre, f.prefill_request);
    assert.equal(
      "max_completion_tokens" in pre,
      false,
      "no max_completion_tokens added where there was none",
    );
    assert.deepEqual(
      p.handoff(f.prefill_response, f.client, ctx("completions", f.prefill_host)),
      f.decode_request,
    );
  });

  it("keeps a loopback remote_host when the frontend also reached the prefill worker on loopback", () => {
    const f = fixture("vllm-nixl-completions");
    const d = p.handoff(f.prefill_response, f.client, ctx("completions", "127.0.0.1")) as Fixture;
    assert.equal(d.kv_transfer_params.remote_host, "localhost");
    const v6 = p.handoff(f.prefill_response, f.client, ctx("completions", "[fd00::21]")) as Fixture;
    assert.equal(v6.kv_transfer_params.remote_host, "fd00::21");
  });

  it("EOS on the first token: no params come back, so the decode worker gets the original body", () => {
    const f = fixture("vllm-nixl-eos-first-token");
    assert.deepEqual(p.handoff(f.prefill_response, f.client, ctx("chat")), f.decode_request);
    // A kv_transfer_params the client sent itself never reaches the decode worker.
    const own = { ...f.client, kv_transfer_params: { do_remote_prefill: true } };
    assert.deepEqual(p.handoff(f.prefill_response, own, ctx("chat")), f.decode_request);
  });

  it("refuses malformed prefill answers with a 502 naming the problem", () => {
    const f = fixture("vllm-nixl-chat");
    const resp = f.prefill_response;
    const with_ = (params: unknown) => ({ ...resp, kv_transfer_params: params });
    rejectsWith(() => p.handoff("oops", f.client, ctx("chat")), /not a JSON object \(got string\)/);
    rejectsWith(
      () =>
        p.handoff(
          { error: { message: "boom", type: "InternalServerError", code: 500 } },
          f.client,
          ctx("chat"),
        ),
      /answered with an error: boom/,
    );
    rejectsWith(
      () => p.handoff({ ...resp, choices: [] }, f.client, ctx("chat")),
      /exactly one choice, got 0/,
    );
    rejectsWith(
      () => p.handoff(with_("params"), f.client, ctx("chat")),
      /kv_transfer_params must be an object/,
    );
    rejectsWith(
      () => p.handoff(with_({ ...resp.kv_transfer_params, remote_port: "5600" }), f.client, ctx("chat")),
      /remote_port must be a port number/,
    );
    rejectsWith(
      () =>
        p.handoff(with_({ ...resp.kv_transfer_params, remote_block_ids: [1, -2] }), f.client, ctx("chat")),
      /remote_block_ids/,
    );
  });

  it("accepts per-group block lists of hybrid models", () => {
    const f = fixture("vllm-nixl-chat");
    const params = { ...f.prefill_response.kv_transfer_params, remote_block_ids: [[1, 2], [9]] };
    const d = p.handoff(
      { ...f.prefill_response, kv_transfer_params: params },
      f.client,
      ctx("chat"),
    ) as Fixture;
    assert.deepEqual(d.kv_transfer_params.remote_block_ids, [[1, 2], [9]]);
  });
});

describe("SGLang adapter", () => {
  const p = sglangProtocol();

  it("sends both legs at once with one bootstrap room, the IPv6 host bracketed", () => {
    const f = fixture("sglang-chat");
    assert.equal(p.concurrent, true);
    const legs = p.legs(f.client, {
      endpoint: "chat",
      prefill: { host: f.prefill_host, bootstrapPort: f.bootstrap_port },
      rng: scriptedRng(f.rng_draws),
    });
    const room = BigInt(f.bootstrap_room);
    for (const [leg, expected] of [
      [legs.prefill, f.prefill_request],
      [legs.decode, f.decode_request],
    ] as [JsonObject, Fixture][]) {
      const { bootstrap_room, ...rest } = leg;
      assert.equal(bootstrap_room, room);
      assert.deepEqual(rest, expected);
    }
    // On the wire the room is an exact integer, beyond what a double holds.
    assert.ok(encodeBody(legs.decode).includes(`"bootstrap_room":${f.bootstrap_room}`));
  });

  it("leaves IPv4 and already bracketed hosts alone and defaults the bootstrap port to 8998", () => {
    const body = { model: "m", prompt: "x" };
    const v4 = p.legs(body, { endpoint: "completions", prefill: { host: "10.1.2.3" }, rng: createRng(3) });
    assert.equal(v4.prefill.bootstrap_host, "10.1.2.3");
    assert.equal(v4.prefill.bootstrap_port, 8998);
    const v6 = p.legs(body, { endpoint: "completions", prefill: { host: "[::1]" }, rng: createRng(3) });
    assert.equal(v6.decode.bootstrap_host, "[::1]");
    assert.throws(
      () => p.legs(body, { endpoint: "completions", prefill: { host: " " }, rng: createRng(3) }),
      RangeError,
    );
  });

  it("draws rooms in [0, 2^63 - 1], reproducibly for a seed", () => {
    const a = createRng(42, "rooms");
    const b = createRng(42, "rooms");
    const rooms = Array.from({ length: 200 }, () => bootstrapRoom(a));
    assert.deepEqual(
      rooms,
      Array.from({ length: 200 }, () => bootstrapRoom(b)),
    );
    for (const r of rooms) assert.ok(r >= 0n && r <= 2n ** 63n - 1n);
    assert.ok(new Set(rooms).size === rooms.length, "rooms repeat");
    assert.ok(
      rooms.some((r) => r > 2n ** 53n),
      "rooms use the full 63 bits",
    );
    assert.equal(bootstrapRoom(scriptedRng([2 ** 31 - 1, 2 ** 32 - 1])), 2n ** 63n - 1n);
  });

  it("treats an error answer from the prefill worker as a 502", () => {
    const f = fixture("sglang-chat");
    rejectsWith(() => p.checkPrefillResponse(f.prefill_error_response), /Bootstrap server not ready/);
    rejectsWith(() => p.checkPrefillResponse([1]), /not a JSON object/);
    p.checkPrefillResponse(null);
    p.checkPrefillResponse({ id: "x", choices: [{ index: 0, text: "", finish_reason: "length" }] });
  });
});

describe("TensorRT-LLM adapter", () => {
  const p = trtllmProtocol();

  it("completions: context_only unary leg, then generation_only with the prompt as the context's token ids", () => {
    const f = fixture("trtllm-completions");
    assert.deepEqual(p.prefillRequest(f.client, ctx("completions")), f.prefill_request);
    const withId = p.prefillRequest(
      f.client,
      ctx("completions", "h", { disaggRequestId: BigInt(f.disagg_request_id) }),
    );
    assert.ok(encodeBody(withId).includes(`"disagg_request_id":${f.disagg_request_id}`));
    assert.deepEqual(p.handoff(f.prefill_response, f.client, ctx("completions")), f.decode_request);
  });

  it("chat: keeps the messages and adds prompt_token_ids", () => {
    const f = fixture("trtllm-chat");
    assert.deepEqual(p.prefillRequest(f.client, ctx("chat")), f.prefill_request);
    assert.deepEqual(p.handoff(f.prefill_response, f.client, ctx("chat")), f.decode_request);
  });

  it("a context answer that finished (not length / not_finished) is the final answer", () => {
    const f = fixture("trtllm-completions");
    assert.equal(p.handoff(f.final_prefill_response, f.client, ctx("completions")), null);
  });

  it("older servers: the context leg capped at one token when asked", () => {
    const f = fixture("trtllm-completions");
    assert.equal(
      trtllmProtocol({ contextMaxTokensOne: true }).prefillRequest(f.client, ctx("completions")).max_tokens,
      1,
    );
  });

  it("refuses a continuing context answer without its params or token ids, or with several choices", () => {
    const f = fixture("trtllm-completions");
    const r = f.prefill_response;
    const choice = r.choices[0];
    const { disaggregated_params: _, ...bare } = choice;
    rejectsWith(
      () => p.handoff({ ...r, choices: [bare] }, f.client, ctx("completions")),
      /must carry choices\[0\]\.disaggregated_params/,
    );
    const { prompt_token_ids: __, ...noIds } = r;
    rejectsWith(() => p.handoff(noIds, f.client, ctx("completions")), /prompt_token_ids/);
    rejectsWith(
      () => p.handoff({ ...r, choices: [choice, choice] }, f.client, ctx("completions")),
      /exactly one choice, got 2/,
    );
    rejectsWith(
      () =>
        p.handoff(
          {
            ...r,
            choices: [
              { ...choice, disaggregated_params: { ...choice.disaggregated_params, ctx_request_id: "x" } },
            ],
          },
          f.client,
          ctx("completions"),
        ),
      /ctx_request_id/,
    );
    rejectsWith(
      () => p.handoff({ error: "Context server timed out" }, f.client, ctx("completions")),
      /timed out/,
    );
  });
});

describe("protocol helpers", () => {
  it("encodeBody writes bigints exactly, drops undefined fields and refuses what JSON cannot hold", () => {
    assert.equal(
      encodeBody({ a: 1n, b: [undefined, "x"], c: undefined, d: { e: null } }),
      '{"a":1,"b":[null,"x"],"d":{"e":null}}',
    );
    assert.equal(encodeBody({ r: 2n ** 63n - 1n }), '{"r":9223372036854775807}');
    const plain = { model: "m", messages: [{ role: "user", content: 'a "quoted" \u0000 text' }], t: 0.5 };
    assert.deepEqual(JSON.parse(encodeBody(plain)), plain);
    assert.throws(() => encodeBody({ x: Number.NaN }), /body\.x is NaN/);
    assert.throws(() => encodeBody({ f: () => 1 }), /function/);
  });

  it("knows loopback hosts and brackets bare IPv6 addresses", () => {
    for (const h of ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "0.0.0.0"])
      assert.ok(isLoopbackHost(h), h);
    for (const h of ["10.0.0.1", "fd00::1", "example.com"]) assert.ok(!isLoopbackHost(h), h);
    assert.equal(bracketIpv6("fd00::1"), "[fd00::1]");
    assert.equal(bracketIpv6("[fd00::1]"), "[fd00::1]");
    assert.equal(bracketIpv6("host.local"), "host.local");
  });
});
