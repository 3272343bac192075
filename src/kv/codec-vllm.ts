import { Packr, Unpackr } from "msgpackr";
import { ServelabError } from "../errors.ts";
import { type BlockHash, type RouterEvent, type StoredBlock, toU64 } from "./events.ts";

/**
 * Codec for the KV-event messages vLLM publishes over ZMQ, which SGLang and TensorRT-LLM copy: three frames,
 * `[topic, seq (u64 big-endian), msgpack(EventBatch)]`, with
 *
 *   EventBatch = [ts, [Event…], data_parallel_rank?]              (every observed publisher)
 *              | {ts, events, data_parallel_rank}                  (what vLLM's declaration alone would give)
 *   Event      = {"type": "BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium, …}
 *              | ["BlockStored", block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium?, …]
 *              | {"type": "BlockRemoved", block_hashes, medium, …} | ["BlockRemoved", block_hashes, medium?, …]
 *              | {"type": "AllBlocksCleared"} | ["AllBlocksCleared"]
 *
 * Fields have been appended to both forms over vLLM releases, so unknown keys and trailing positions are ignored,
 * and unknown event types are skipped and counted rather than failing a whole batch.
 */

/** Events per batch that fit in an event id; see `eventIdFor`. */
export const MAX_EVENTS_PER_BATCH = 65536;
/** Sequence numbers from which event ids would no longer fit in a u64. */
export const SEQ_LIMIT = 1n << 48n;

/**
 * Event ids must rise monotonically per worker, and a ZMQ batch gives a sequence number per batch, not per event:
 * so an event's id is `seq * 65536 + its index in the batch`. The index counts every event in the batch, skipped
 * ones included, so an event's id does not depend on what was filtered out around it.
 */
export function eventIdFor(seq: bigint, index: number): bigint {
  return seq * BigInt(MAX_EVENTS_PER_BATCH) + BigInt(index);
}

export interface VllmDecodeContext {
  /** The worker that published on this socket (the message itself does not say). */
  workerId: string;
  /** Attention-DP rank to use when the batch does not carry one (vLLM publishes each rank on port + rank). */
  dpRank?: number;
  /**
   * The router's content hash for each full block of `tokenIds`. Matching runs on this, not on the engine's hashes:
   * engines hash with their own salts and schemes, so their ids only link parents and name blocks for removal.
   */
  blockHashToTokensHash: (tokenIds: readonly number[], blockSize: number) => bigint[];
  /** Prefix for error messages, e.g. the endpoint the message came from. */
  where?: string;
}

export interface VllmDecodedBatch {
  topic: string;
  seq: bigint;
  /** Publisher wall-clock time in seconds, as sent. */
  timestamp: number;
  dpRank: number;
  events: RouterEvent[];
  skipped: {
    /** Events about a tier other than device memory (CPU offload, disk, …), which the index does not track. */
    nonDeviceMedium: number;
    /** Events of a type this codec does not know, from a newer engine. */
    unknownType: number;
  };
}

// int64AsType "bigint": hashes above 2^53 would otherwise be rounded. useRecords false: publishers write plain
// msgpack, and msgpackr's record extension must not reinterpret any of it.
const unpackr = new Unpackr({ mapsAsObjects: true, int64AsType: "bigint", useRecords: false });
const packr = new Packr({ useRecords: false });
const utf8 = new TextDecoder("utf-8", { fatal: true });
const U32_LIMIT = 2 ** 32;

type Plain = Record<string, unknown>;

function isMap(v: unknown): v is Plain {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "nil";
  if (typeof v === "number" || typeof v === "bigint")
    return `${typeof v === "bigint" ? "integer" : "number"} ${v}`;
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 24 ? `${v.slice(0, 24)}…` : v)}`;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (isMap(v)) return "a map";
  return `a ${(v as object).constructor?.name ?? "value"}`;
}

class DecodeFailure {
  constructor(private readonly prefix: string) {}

  fail(path: string, reason: string): never {
    throw new ServelabError("KV_EVENT_DECODE", `${this.prefix}: ${path}: ${reason}`);
  }

  hash(v: unknown, path: string): BlockHash {
    if (typeof v === "bigint") return toU64(v);
    if (typeof v === "number") {
      if (Number.isSafeInteger(v)) return toU64(v);
      return this.fail(path, `expected an integer or bytes hash, got ${describe(v)}`);
    }
    if (v instanceof Uint8Array) {
      if (v.length === 0) return this.fail(path, "expected a hash, got empty bytes");
      // vLLM's own reduction of a digest to an id: int.from_bytes(digest, "big") & (2^64 - 1).
      let h = 0n;
      for (let i = Math.max(0, v.length - 8); i < v.length; i++) h = (h << 8n) | BigInt(v[i]!);
      return h;
    }
    return this.fail(path, `expected an integer or bytes hash, got ${describe(v)}`);
  }

  hashes(v: unknown, path: string): BlockHash[] {
    if (!Array.isArray(v)) return this.fail(path, `expected an array of hashes, got ${describe(v)}`);
    return v.map((h, i) => this.hash(h, `${path}[${i}]`));
  }

  /** A non-negative integer below `limit` (msgpack may carry small values as either number or bigint). */
  count(v: unknown, path: string, what: string, limit: number): number {
    const n = typeof v === "bigint" && v >= 0n && v < BigInt(limit) ? Number(v) : v;
    if (typeof n === "number" && Number.isInteger(n) && n >= 0 && n < limit) return n;
    return this.fail(path, `expected ${what}, got ${describe(v)}`);
  }

  tokenIds(v: unknown, path: string): number[] {
    if (!Array.isArray(v)) return this.fail(path, `expected an array of token ids, got ${describe(v)}`);
    const out = new Array<number>(v.length);
    for (let i = 0; i < v.length; i++) {
      const t = v[i];
      out[i] =
        typeof t === "number" && t >= 0 && t < U32_LIMIT && Number.isInteger(t)
          ? t
          : this.count(t, `${path}[${i}]`, "a token id (an integer in [0, 2^32))", U32_LIMIT);
    }
    return out;
  }
}

/** Reads an event's fields by name from a map, or by position from a legacy tagged array. */
type FieldReader = (name: string) => { value: unknown; path: string };

const STORED_POSITIONS: Record<string, number> = {
  block_hashes: 1,
  parent_block_hash: 2,
  token_ids: 3,
  block_size: 4,
  lora_id: 5,
  medium: 6,
};
const REMOVED_POSITIONS: Record<string, number> = { block_hashes: 1, medium: 2 };

function fieldReader(ev: unknown[] | Plain, path: string, positions: Record<string, number>): FieldReader {
  if (Array.isArray(ev)) {
    return (name) => {
      const at = positions[name]!;
      return { value: ev[at], path: `${path}[${at}] (${name})` };
    };
  }
  return (name) => ({ value: Object.hasOwn(ev, name) ? ev[name] : undefined, path: `${path}.${name}` });
}

/** True when the event is about device (GPU) memory: `medium` absent, nil or "GPU" in any case. */
function onDevice(f: DecodeFailure, field: FieldReader): boolean {
  const { value, path } = field("medium");
  if (value === undefined || value === null) return true;
  if (typeof value !== "string") return f.fail(path, `expected a string or nil, got ${describe(value)}`);
  return value.toUpperCase() === "GPU";
}

function checkContext(ctx: VllmDecodeContext): void {
  if (ctx === null || typeof ctx !== "object")
    throw new TypeError("decodeVllmMultipart needs a context object");
  if (typeof ctx.workerId !== "string" || ctx.workerId === "") {
    throw new TypeError(`ctx.workerId must be a non-empty string, got ${describe(ctx.workerId)}`);
  }
  if (
    ctx.dpRank !== undefined &&
    (!Number.isInteger(ctx.dpRank) || ctx.dpRank < 0 || ctx.dpRank >= U32_LIMIT)
  ) {
    throw new RangeError(`ctx.dpRank must be an integer in [0, 2^32), got ${describe(ctx.dpRank)}`);
  }
  if (typeof ctx.blockHashToTokensHash !== "function") {
    throw new TypeError("ctx.blockHashToTokensHash must be a function");
  }
}

/** The router hashes for a stored event's blocks, checked, since a wrong count would misalign every block. */
function tokensHashes(
  ctx: VllmDecodeContext,
  tokenIds: number[],
  blockSize: number,
  blocks: number,
): bigint[] {
  const hashes = ctx.blockHashToTokensHash(tokenIds, blockSize);
  if (!Array.isArray(hashes) || hashes.length !== blocks) {
    throw new TypeError(
      `ctx.blockHashToTokensHash returned ${describe(hashes)} for ${blocks} blocks of ${blockSize} tokens`,
    );
  }
  for (const h of hashes) {
    if (typeof h !== "bigint" || h < 0n || h >= 1n << 64n) {
      throw new TypeError(`ctx.blockHashToTokensHash returned ${describe(h)}, not a u64 bigint`);
    }
  }
  return hashes;
}

function taggedEvent(f: DecodeFailure, ev: unknown, path: string): { tag: string; ev: unknown[] | Plain } {
  let tag: unknown;
  let tagPath: string;
  if (Array.isArray(ev)) {
    tag = ev[0];
    tagPath = `${path}[0]`;
  } else if (isMap(ev)) {
    tag = Object.hasOwn(ev, "type") ? ev.type : undefined;
    tagPath = `${path}.type`;
  } else {
    return f.fail(path, `expected a map or a tagged array, got ${describe(ev)}`);
  }
  if (typeof tag !== "string")
    return f.fail(tagPath, `expected the event type as a string, got ${describe(tag)}`);
  return { tag, ev };
}

/** Decodes one published ZMQ message. Throws ServelabError KV_EVENT_DECODE naming the frame or field at fault. */
export function decodeVllmMultipart(frames: readonly Uint8Array[], ctx: VllmDecodeContext): VllmDecodedBatch {
  checkContext(ctx);
  const where = ctx.where ?? `KV events from worker ${JSON.stringify(ctx.workerId)}`;
  const top = new DecodeFailure(where);

  if (!Array.isArray(frames))
    return top.fail("message", `expected an array of frames, got ${describe(frames)}`);
  if (frames.length !== 3) {
    return top.fail("message", `expected 3 frames (topic, seq, payload), got ${frames.length}`);
  }
  const names = ["frame 0 (topic)", "frame 1 (seq)", "frame 2 (payload)"];
  frames.forEach((fr, i) => {
    if (!(fr instanceof Uint8Array)) top.fail(names[i]!, `expected bytes, got ${describe(fr)}`);
  });
  const [topicFrame, seqFrame, payloadFrame] = frames as [Uint8Array, Uint8Array, Uint8Array];

  let topic: string;
  try {
    topic = utf8.decode(topicFrame);
  } catch {
    return top.fail(names[0]!, "is not valid UTF-8");
  }
  if (seqFrame.length !== 8) {
    return top.fail(names[1]!, `expected 8 bytes (a big-endian u64), got ${seqFrame.length}`);
  }
  const seq = new DataView(seqFrame.buffer, seqFrame.byteOffset, 8).getBigUint64(0, false);
  if (seq >= SEQ_LIMIT) {
    return top.fail(names[1]!, `sequence number ${seq} is too large to number events by (limit 2^48)`);
  }

  let batch: unknown;
  try {
    batch = unpackr.unpack(payloadFrame);
  } catch (e) {
    return top.fail(names[2]!, `is not valid msgpack (${e instanceof Error ? e.message : String(e)})`);
  }

  const f = new DecodeFailure(`${where}, seq ${seq}`);
  let ts: unknown;
  let rawEvents: unknown;
  let rawRank: unknown;
  let tsPath: string;
  let eventsPath: string;
  let rankPath: string;
  if (Array.isArray(batch)) {
    if (batch.length < 2) return f.fail("batch", `expected [ts, events, dp_rank?], got ${describe(batch)}`);
    [ts, rawEvents, rawRank] = batch;
    [tsPath, eventsPath, rankPath] = ["batch[0] (ts)", "batch[1] (events)", "batch[2] (dp_rank)"];
  } else if (isMap(batch)) {
    ts = batch.ts;
    rawEvents = batch.events;
    rawRank = batch.data_parallel_rank;
    [tsPath, eventsPath, rankPath] = ["batch.ts", "batch.events", "batch.data_parallel_rank"];
  } else {
    return f.fail("batch", `expected an array [ts, events, dp_rank?] or a map, got ${describe(batch)}`);
  }

  const timestamp = typeof ts === "bigint" ? Number(ts) : ts;
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp)) {
    return f.fail(tsPath, `expected a finite number of seconds, got ${describe(ts)}`);
  }
  if (!Array.isArray(rawEvents))
    return f.fail(eventsPath, `expected an array of events, got ${describe(rawEvents)}`);
  if (rawEvents.length > MAX_EVENTS_PER_BATCH) {
    return f.fail(
      eventsPath,
      `holds ${rawEvents.length} events; at most ${MAX_EVENTS_PER_BATCH} fit in event ids`,
    );
  }
  const dpRank =
    rawRank === undefined || rawRank === null
      ? (ctx.dpRank ?? 0)
      : f.count(rawRank, rankPath, "a rank (an integer in [0, 2^32))", U32_LIMIT);

  const out: VllmDecodedBatch = {
    topic,
    seq,
    timestamp,
    dpRank,
    events: [],
    skipped: { nonDeviceMedium: 0, unknownType: 0 },
  };
  for (let i = 0; i < rawEvents.length; i++) {
    const path = `events[${i}]`;
    const { tag, ev } = taggedEvent(f, rawEvents[i], path);
    const eventId = eventIdFor(seq, i);
    const base = { workerId: ctx.workerId, dpRank, eventId };

    if (tag === "BlockStored") {
      const field = fieldReader(ev, path, STORED_POSITIONS);
      if (!onDevice(f, field)) {
        out.skipped.nonDeviceMedium++;
        continue;
      }
      const hashes = field("block_hashes");
      const blockHashes = f.hashes(hashes.value, hashes.path);
      const parent = field("parent_block_hash");
      const parentHash =
        parent.value === undefined || parent.value === null ? null : f.hash(parent.value, parent.path);
      const tokens = field("token_ids");
      const tokenIds = f.tokenIds(tokens.value, tokens.path);
      const size = field("block_size");
      const blockSize = f.count(size.value, size.path, "a positive block size", U32_LIMIT);
      if (blockSize === 0) f.fail(size.path, "expected a positive block size, got 0");
      if (tokenIds.length !== blockHashes.length * blockSize) {
        f.fail(
          tokens.path,
          `holds ${tokenIds.length} tokens, but ${blockHashes.length} blocks of ${blockSize} need ${blockHashes.length * blockSize}`,
        );
      }
      const local = tokensHashes(ctx, tokenIds, blockSize, blockHashes.length);
      const blocks: StoredBlock[] = blockHashes.map((blockHash, b) => ({ blockHash, tokensHash: local[b]! }));
      out.events.push({ ...base, data: { type: "stored", parentHash, blocks } });
    } else if (tag === "BlockRemoved") {
      const field = fieldReader(ev, path, REMOVED_POSITIONS);
      if (!onDevice(f, field)) {
        out.skipped.nonDeviceMedium++;
        continue;
      }
      const hashes = field("block_hashes");
      out.events.push({
        ...base,
        data: { type: "removed", blockHashes: f.hashes(hashes.value, hashes.path) },
      });
    } else if (tag === "AllBlocksCleared") {
      // Carries no medium in any engine version: a clear resets the whole cache, device tier included.
      out.events.push({ ...base, data: { type: "cleared" } });
    } else {
      out.skipped.unknownType++;
    }
  }
  return out;
}

/** A block hash as an engine puts it on the wire: an integer, or raw digest bytes. */
export type VllmWireHash = bigint | Uint8Array;

export type VllmWireEvent =
  | {
      type: "BlockStored";
      blockHashes: readonly VllmWireHash[];
      parentBlockHash: VllmWireHash | null;
      tokenIds: readonly number[];
      blockSize: number;
      loraId?: number | null;
      /** Written only when given: older engines had no such field. */
      medium?: string | null;
    }
  | { type: "BlockRemoved"; blockHashes: readonly VllmWireHash[]; medium?: string | null }
  | { type: "AllBlocksCleared" };

export interface VllmMessage {
  topic: string;
  seq: bigint;
  timestamp: number;
  /** Written only when given (null is written as nil): early vLLM batches had no rank. */
  dpRank?: number | null;
  events: readonly VllmWireEvent[];
}

export interface VllmEncodeOptions {
  /** "map": tagged maps (current vLLM, TensorRT-LLM); "array": tagged positional arrays (legacy vLLM, SGLang). */
  eventForm?: "map" | "array";
  /** "array": `[ts, events, dp_rank]`, as every observed publisher writes; "map": `{ts, events, data_parallel_rank}`. */
  batchForm?: "array" | "map";
  /** "uint64": integer hashes (vLLM's default); "bytes": 32-byte digests (VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0). */
  hashForm?: "uint64" | "bytes";
}

function wireHash(h: VllmWireHash, form: "uint64" | "bytes", what: string): number | bigint | Uint8Array {
  if (h instanceof Uint8Array) return h;
  if (typeof h !== "bigint" || h < 0n || h >= 1n << 64n) {
    throw new RangeError(`${what} must be a bigint in [0, 2^64) or bytes, got ${describe(h)}`);
  }
  if (form === "bytes") {
    const digest = new Uint8Array(32);
    new DataView(digest.buffer).setBigUint64(24, h, false);
    return digest;
  }
  // msgspec writes integers in their shortest form; msgpackr does the same for numbers below 2^32 and writes
  // larger bigints as int64 or, above 2^63, uint64.
  return h < 2n ** 32n ? Number(h) : h;
}

function wireEvent(ev: VllmWireEvent, i: number, opts: Required<VllmEncodeOptions>): unknown {
  const hash = (h: VllmWireHash, what: string) => wireHash(h, opts.hashForm, `events[${i}].${what}`);
  const asArray = opts.eventForm === "array";
  switch (ev.type) {
    case "BlockStored": {
      if (!Number.isInteger(ev.blockSize) || ev.blockSize <= 0) {
        throw new RangeError(
          `events[${i}].blockSize must be a positive integer, got ${describe(ev.blockSize)}`,
        );
      }
      ev.tokenIds.forEach((t, k) => {
        if (!Number.isInteger(t) || t < 0 || t >= U32_LIMIT) {
          throw new RangeError(
            `events[${i}].tokenIds[${k}] must be an integer in [0, 2^32), got ${describe(t)}`,
          );
        }
      });
      const blockHashes = ev.blockHashes.map((h, k) => hash(h, `blockHashes[${k}]`));
      const parent = ev.parentBlockHash === null ? null : hash(ev.parentBlockHash, "parentBlockHash");
      const tokenIds = [...ev.tokenIds];
      const loraId = ev.loraId ?? null;
      if (asArray) {
        const arr: unknown[] = ["BlockStored", blockHashes, parent, tokenIds, ev.blockSize, loraId];
        if (ev.medium !== undefined) arr.push(ev.medium);
        return arr;
      }
      const map: Plain = {
        type: "BlockStored",
        block_hashes: blockHashes,
        parent_block_hash: parent,
        token_ids: tokenIds,
        block_size: ev.blockSize,
        lora_id: loraId,
      };
      if (ev.medium !== undefined) map.medium = ev.medium;
      return map;
    }
    case "BlockRemoved": {
      const blockHashes = ev.blockHashes.map((h, k) => hash(h, `blockHashes[${k}]`));
      if (asArray)
        return ev.medium === undefined
          ? ["BlockRemoved", blockHashes]
          : ["BlockRemoved", blockHashes, ev.medium];
      return ev.medium === undefined
        ? { type: "BlockRemoved", block_hashes: blockHashes }
        : { type: "BlockRemoved", block_hashes: blockHashes, medium: ev.medium };
    }
    case "AllBlocksCleared":
      return asArray ? ["AllBlocksCleared"] : { type: "AllBlocksCleared" };
    default:
      throw new TypeError(`events[${i}] has unknown type ${JSON.stringify((ev as { type: unknown }).type)}`);
  }
}

/** Builds the three frames an engine would publish, in either wire form, for tests and mock workers. */
export function encodeVllmMultipart(msg: VllmMessage, options: VllmEncodeOptions = {}): Uint8Array[] {
  const opts: Required<VllmEncodeOptions> = {
    eventForm: options.eventForm ?? "map",
    batchForm: options.batchForm ?? "array",
    hashForm: options.hashForm ?? "uint64",
  };
  if (typeof msg.topic !== "string")
    throw new TypeError(`topic must be a string, got ${describe(msg.topic)}`);
  if (typeof msg.seq !== "bigint" || msg.seq < 0n || msg.seq >= 1n << 64n) {
    throw new RangeError(`seq must be a bigint in [0, 2^64), got ${describe(msg.seq)}`);
  }
  if (typeof msg.timestamp !== "number" || !Number.isFinite(msg.timestamp)) {
    throw new RangeError(`timestamp must be a finite number, got ${describe(msg.timestamp)}`);
  }
  const rank = msg.dpRank;
  if (rank !== undefined && rank !== null && (!Number.isInteger(rank) || rank < 0 || rank >= U32_LIMIT)) {
    throw new RangeError(`dpRank must be an integer in [0, 2^32), got ${describe(rank)}`);
  }
  const events = msg.events.map((ev, i) => wireEvent(ev, i, opts));
  let batch: unknown;
  if (opts.batchForm === "map") {
    batch =
      rank === undefined
        ? { ts: msg.timestamp, events }
        : { ts: msg.timestamp, events, data_parallel_rank: rank };
  } else {
    batch = rank === undefined ? [msg.timestamp, events] : [msg.timestamp, events, rank];
  }
  const seq = new Uint8Array(8);
  new DataView(seq.buffer).setBigUint64(0, msg.seq, false);
  // Copied out: msgpackr hands back a view into a buffer it reuses for later packs.
  const payload = new Uint8Array(packr.pack(batch));
  return [new TextEncoder().encode(msg.topic), seq, payload];
}
