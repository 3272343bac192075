import { ServelabError } from "../../errors.ts";

/**
 * vLLM's `--kv-events-config` (vllm/config/kv_events.py `KVEventsConfig`), with the same keys and defaults, so a
 * command line written for `vllm serve` configures `servelab worker` unchanged. SGLang and TensorRT-LLM take the
 * same keys.
 */
export interface KvEventsConfig {
  enableKvCacheEvents: boolean;
  /** "zmq" publishes; "null" (vLLM's null publisher) discards. */
  publisher: "zmq" | "null";
  /** PUB endpoint; with DP, rank r publishes on port + r (see `offsetEndpointPort`). */
  endpoint: string;
  /** ROUTER endpoint answering replay requests, offset per rank like `endpoint`; null: no replay. */
  replayEndpoint: string | null;
  /** Batches kept for replay. */
  bufferSteps: number;
  /** ZMQ send high-water mark of the PUB socket (messages); past it a subscriber loses batches. */
  hwm: number;
  /** Batches waiting to be sent; past it batches skip the wire and are left to replay. */
  maxQueueSize: number;
  topic: string;
}

export const KV_EVENTS_DEFAULTS: Readonly<Omit<KvEventsConfig, "publisher">> = {
  enableKvCacheEvents: false,
  endpoint: "tcp://*:5557",
  replayEndpoint: null,
  bufferSteps: 10_000,
  hwm: 100_000,
  maxQueueSize: 100_000,
  topic: "",
};

const KEYS = [
  "enable_kv_cache_events",
  "publisher",
  "endpoint",
  "replay_endpoint",
  "buffer_steps",
  "hwm",
  "max_queue_size",
  "topic",
] as const;

function fail(where: string, message: string): never {
  throw new ServelabError("KV_EVENTS_CONFIG", `${where}: ${message}`);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function endpointValue(v: unknown, key: string, where: string): string {
  if (typeof v !== "string" || v.trim() === "")
    fail(where, `${key} must be a non-empty string, got ${describe(v)}`);
  if (!/^(tcp|ipc|inproc):\/\/./.test(v))
    fail(where, `${key} must be a tcp://, ipc:// or inproc:// endpoint, got ${JSON.stringify(v)}`);
  return v;
}

function countValue(v: unknown, key: string, where: string, min: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min)
    fail(where, `${key} must be an integer ≥ ${min}, got ${describe(v)}`);
  return v;
}

/**
 * Parses the JSON text of `--kv-events-config` (or an already-parsed object). Unknown keys are refused rather than
 * ignored: a misspelt `replay_endpoint` would otherwise silently disable gap recovery.
 */
export function parseKvEventsConfig(input: string | unknown, where = "--kv-events-config"): KvEventsConfig {
  let raw: unknown = input;
  if (typeof input === "string") {
    try {
      raw = JSON.parse(input);
    } catch (e) {
      fail(where, `not valid JSON (${(e as Error).message})`);
    }
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    fail(where, `expected a JSON object, got ${describe(raw)}`);
  const o = raw as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0)
    fail(
      where,
      `unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => JSON.stringify(k)).join(", ")} (known: ${KEYS.join(", ")})`,
    );

  const d = KV_EVENTS_DEFAULTS;
  const has = (k: string) => Object.hasOwn(o, k) && o[k] !== undefined;
  let enable = d.enableKvCacheEvents;
  if (has("enable_kv_cache_events")) {
    if (typeof o.enable_kv_cache_events !== "boolean")
      fail(where, `enable_kv_cache_events must be true or false, got ${describe(o.enable_kv_cache_events)}`);
    enable = o.enable_kv_cache_events;
  }
  // vLLM leaves `publisher` unset and fills it in from `enable_kv_cache_events`.
  let publisher: "zmq" | "null" = enable ? "zmq" : "null";
  if (has("publisher") && o.publisher !== null) {
    if (o.publisher !== "zmq" && o.publisher !== "null")
      fail(where, `publisher must be "zmq" or "null", got ${describe(o.publisher)}`);
    publisher = o.publisher;
  }
  const replay = has("replay_endpoint") ? o.replay_endpoint : d.replayEndpoint;
  let topic = d.topic;
  if (has("topic")) {
    if (typeof o.topic !== "string") fail(where, `topic must be a string, got ${describe(o.topic)}`);
    topic = o.topic;
  }
  return {
    enableKvCacheEvents: enable,
    publisher,
    endpoint: has("endpoint") ? endpointValue(o.endpoint, "endpoint", where) : d.endpoint,
    replayEndpoint: replay === null ? null : endpointValue(replay, "replay_endpoint", where),
    bufferSteps: has("buffer_steps") ? countValue(o.buffer_steps, "buffer_steps", where, 1) : d.bufferSteps,
    // 0 is ZMQ's "no limit".
    hwm: has("hwm") ? countValue(o.hwm, "hwm", where, 0) : d.hwm,
    maxQueueSize: has("max_queue_size")
      ? countValue(o.max_queue_size, "max_queue_size", where, 1)
      : d.maxQueueSize,
    topic,
  };
}

/** Whether events are actually published: enabled, with the zmq publisher. */
export function publishes(c: KvEventsConfig): boolean {
  return c.enableKvCacheEvents && c.publisher === "zmq";
}

/**
 * vLLM's `offset_endpoint_port`: rank r of a DP group publishes on the base port + r (rank 0 unchanged), an
 * inproc endpoint gets `_dp<r>` appended. Port 0 (or `*`) stays as is, each rank binding its own free port.
 */
export function offsetEndpointPort(endpoint: string, dpRank: number, where = "--kv-events-config"): string {
  if (dpRank === 0) return endpoint;
  if (endpoint.startsWith("inproc://")) return `${endpoint}_dp${dpRank}`;
  if (!endpoint.startsWith("tcp://"))
    fail(
      where,
      `${endpoint}: only tcp:// and inproc:// endpoints can be offset per DP rank (dp rank ${dpRank})`,
    );
  const colon = endpoint.lastIndexOf(":");
  const port = endpoint.slice(colon + 1);
  if (colon < "tcp://".length || !/^(\d+|\*)$/.test(port))
    fail(where, `${endpoint}: expected tcp://HOST:PORT to offset per DP rank`);
  if (port === "*" || Number(port) === 0) return endpoint;
  const next = Number(port) + dpRank;
  if (next > 65535) fail(where, `${endpoint}: dp rank ${dpRank} would publish on port ${next}, above 65535`);
  return `${endpoint.slice(0, colon)}:${next}`;
}

/**
 * vLLM binds when the endpoint names a wildcard or a local transport, else connects to a central subscriber. Port
 * 0 binds too (an OS-chosen port, as vLLM's `/kv_event_sources` discovery does): nothing listens on port 0.
 */
export function endpointBinds(endpoint: string): boolean {
  return (
    endpoint.includes("*") ||
    /^tcp:\/\/.*:0$/.test(endpoint) ||
    endpoint.includes("::") ||
    endpoint.startsWith("ipc://") ||
    endpoint.startsWith("inproc://")
  );
}
