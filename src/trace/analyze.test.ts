import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { skipWithoutData } from "../testing/data-dir.ts";
import { CONVERSATION_TRACE } from "../testing/fixtures.ts";
import { analyzeRows } from "./analyze.ts";
import { readTrace } from "./reader.ts";
import type { TraceRow } from "./types.ts";

const rows: TraceRow[] = [
  { timestamp: 0, input_length: 1300, output_length: 10, hash_ids: [0, 1, 2] },
  { timestamp: 1000, input_length: 1500, output_length: 20, hash_ids: [0, 1, 3] },
  { timestamp: 4000, input_length: 100, output_length: 30, hash_ids: [4] },
];

describe("trace analyzer", () => {
  it("computes the hand-checked statistics of a small trace", () => {
    const a = analyzeRows(rows, { cacheSizesTokens: [1024, 512] });
    assert.equal(a.requests, 3);
    assert.equal(a.duration_s, 4);
    assert.equal(a.arrival_rate_per_s, 0.75);
    assert.equal(a.total_blocks, 7);
    assert.equal(a.unique_blocks, 5);
    assert.equal(a.block_hit_rate, 2 / 7);
    assert.equal(a.token_hit_rate, 1024 / 2900);
    assert.equal(a.mean_request_hit_rate, 2 / 9);
    assert.equal(a.shared_prefix_source, "repeated_blocks");
    assert.equal(a.shared_prefix_ratio, 2048 / 2900);
    assert.equal(a.isl.mean, 2900 / 3);
    assert.equal(a.isl.min, 100);
    assert.equal(a.isl.p50, 1300);
    assert.equal(a.osl.max, 30);
    assert.deepEqual(
      a.lru.map((l) => [l.cache_blocks, l.block_hit_rate, l.token_hit_rate]),
      [
        [2, 2 / 7, 1024 / 2900],
        [1, 1 / 7, 512 / 2900],
      ],
    );
    assert.equal(a.context_len, undefined);
  });

  it("counts a fully repeated prompt as shared up to its real length", () => {
    const a = analyzeRows([
      { timestamp: 0, input_length: 700, output_length: 1, hash_ids: [0, 1] },
      { timestamp: 1, input_length: 700, output_length: 1, hash_ids: [0, 1] },
    ]);
    assert.equal(a.shared_prefix_ratio, 1);
    assert.equal(a.token_hit_rate, 0.5);
  });

  it("uses context_len for the shared-prefix ratio when every row has it", () => {
    const a = analyzeRows(
      rows.map((r) => ({ ...r, context_len: 0, unique_user_prompt_len: r.input_length })),
    );
    assert.equal(a.shared_prefix_source, "context_len");
    assert.equal(a.shared_prefix_ratio, 0);
    assert.equal(a.context_len?.max, 0);
    assert.equal(a.unique_user_prompt_len?.mean, 2900 / 3);
  });

  it("reproduces the Mooncake conversation trace's published statistics", {
    skip: skipWithoutData(CONVERSATION_TRACE),
  }, async () => {
    const a = analyzeRows(await readTrace(CONVERSATION_TRACE), { cacheSizesTokens: [25.6e6] });
    assert.equal(a.requests, 12_031);
    assert.equal(a.total_blocks, 288_500);
    assert.equal(a.unique_blocks, 182_790);
    assert.equal(a.block_hit_rate.toFixed(4), "0.3664");
    assert.equal(a.token_hit_rate.toFixed(3), "0.374");
    assert.equal(Math.round(a.isl.mean), 12_035);
    assert.equal(a.isl.p50, 6909);
    assert.equal(a.isl.p90, 27_367);
    assert.equal(a.osl.mean.toFixed(1), "342.6");
    assert.equal(a.arrival_rate_per_s.toFixed(2), "3.40");
    // The source's LRU figure for a 25.6 M-token cache is 35.5 %.
    assert.equal(a.lru[0]!.block_hit_rate.toFixed(3), "0.355");
  });
});
