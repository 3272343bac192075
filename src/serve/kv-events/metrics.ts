import { Counter, type Registry } from "prom-client";
import type { KvApplyStatus, KvEventCounters, KvEventType } from "./subscriber.ts";

/**
 * Exports a subscriber's counters on a prom-client registry at scrape time: the applied events under Dynamo's
 * router metric `dynamo_component_kv_cache_events_applied{event_type,status}`, and the stream's health (gaps,
 * replays by outcome, publisher resets, source clears, undecodable messages) under servelab names, Dynamo having
 * no published names for them.
 */
export function registerKvEventMetrics(registry: Registry, counters: () => KvEventCounters): void {
  const mirror = (
    name: string,
    help: string,
    labelNames: string[],
    read: (c: Counter<string>, k: KvEventCounters) => void,
  ) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        read(this, counters());
      },
    });
  mirror(
    "dynamo_component_kv_cache_events_applied",
    "KV cache events applied to the router's index, by event type and outcome",
    ["event_type", "status"],
    (m, k) => {
      for (const [type, byStatus] of Object.entries(k.applied) as [
        KvEventType,
        Record<KvApplyStatus, number>,
      ][])
        for (const [status, n] of Object.entries(byStatus)) if (n > 0) m.inc({ event_type: type, status }, n);
    },
  );
  const plain = (name: string, help: string, read: (k: KvEventCounters) => number) =>
    mirror(name, help, [], (m, k) => m.inc(read(k)));
  plain("servelab_kv_events_batches_total", "KV-event batches applied (live or replayed)", (k) => k.batches);
  plain("servelab_kv_events_gaps_total", "Gaps in a publisher's batch sequence", (k) => k.gaps);
  plain(
    "servelab_kv_events_resets_total",
    "Publisher restarts detected from its sequence numbers",
    (k) => k.resets,
  );
  plain(
    "servelab_kv_events_source_clears_total",
    "Times a source's blocks were dropped to rebuild",
    (k) => k.clears,
  );
  plain(
    "servelab_kv_events_decode_errors_total",
    "KV-event messages that could not be decoded",
    (k) => k.decodeErrors,
  );
  plain(
    "servelab_kv_events_duplicates_total",
    "Live batches already applied through a replay",
    (k) => k.duplicates,
  );
  mirror("servelab_kv_events_replays_total", "Replay requests by outcome", ["status"], (m, k) => {
    m.inc({ status: "requested" }, k.replaysRequested);
    m.inc({ status: "completed" }, k.replaysCompleted);
    m.inc({ status: "truncated" }, k.replaysTruncated);
    m.inc({ status: "failed" }, k.replaysFailed);
  });
}
