import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { registerKvEventMetrics } from "./metrics.ts";
import { newKvEventCounters } from "./subscriber.ts";

describe("KV-event metrics", () => {
  it("exports the subscriber's counters at scrape time under Dynamo's and servelab's names", async () => {
    const registry = new Registry();
    const counters = newKvEventCounters();
    registerKvEventMetrics(registry, () => counters);
    counters.applied.stored.ok = 7;
    counters.applied.removed.block_not_found = 2;
    counters.gaps = 3;
    counters.replaysRequested = 4;
    counters.replaysFailed = 1;
    const text = await registry.metrics();
    assert.match(text, /^dynamo_component_kv_cache_events_applied\{event_type="stored",status="ok"\} 7$/m);
    assert.match(
      text,
      /^dynamo_component_kv_cache_events_applied\{event_type="removed",status="block_not_found"\} 2$/m,
    );
    assert.doesNotMatch(text, /event_type="cleared"/);
    assert.match(text, /^servelab_kv_events_gaps_total 3$/m);
    assert.match(text, /^servelab_kv_events_replays_total\{status="failed"\} 1$/m);
    assert.match(text, /# TYPE dynamo_component_kv_cache_events_applied counter/);
    // Read again at the next scrape, not accumulated.
    counters.gaps = 5;
    assert.match(await registry.metrics(), /^servelab_kv_events_gaps_total 5$/m);
  });
});
