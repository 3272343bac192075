import { ServelabError } from "../errors.ts";
import type { BlockHash, KvCacheEventData, RouterEvent, StoredBlock } from "./events.ts";

/**
 * JSON codec for Dynamo's serde `RouterEvent` (lib/llm/src/kv_router/protocols.rs):
 *
 *   { "worker_id": u64, "event": { "event_id": u64, "data": DATA, "dp_rank": u32 } }
 *   DATA = { "stored": { "parent_hash": u64 | null, "blocks": [{ "block_hash": u64, "tokens_hash": u64 }] } }
 *        | { "removed": { "block_hashes": [u64] } }
 *        | "cleared"
 *
 * Hashes use the full u64 range and `JSON.parse` rounds integers above 2^53, so this module carries its own small
 * JSON parser that keeps every integer literal as a bigint. Decoding follows serde's rules where they matter to a
 * reader: unknown keys are ignored, `dp_rank` defaults to 0, a missing `parent_hash` is null, floats are not
 * integers, and duplicate keys are refused (serde rejects duplicate fields; taking either copy would be a guess).
 */

const U64_LIMIT = 1n << 64n;
const U32_LIMIT = 1n << 32n;
// serde_json's own recursion limit; RouterEvent needs 6 levels, so anything deeper is not one.
const MAX_DEPTH = 128;
const DECIMAL_U64 = /^(0|[1-9][0-9]*)$/;

/** A parsed JSON value: integer literals are bigints, other numbers are JS numbers, objects are Maps. */
type JsonValue = null | boolean | string | bigint | number | JsonValue[] | JsonObject;
type JsonObject = Map<string, JsonValue>;

function decodeError(where: string, message: string): ServelabError {
  return new ServelabError("KV_EVENT_DECODE", `${where}: ${message}`);
}

class JsonParser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly where: string,
  ) {}

  parseDocument(): JsonValue {
    this.skipWhitespace();
    const v = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos < this.text.length) this.fail("unexpected content after the JSON value");
    return v;
  }

  private fail(reason: string): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < this.pos && i < this.text.length; i++) {
      if (this.text.charCodeAt(i) === 10) {
        line++;
        lineStart = i + 1;
      }
    }
    throw decodeError(
      this.where,
      `invalid JSON at line ${line}, column ${this.pos - lineStart + 1}: ${reason}`,
    );
  }

  private found(): string {
    if (this.pos >= this.text.length) return "the end of the input";
    return JSON.stringify(this.text[this.pos]);
  }

  private skipWhitespace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  private expectLiteral(word: string): void {
    if (this.text.startsWith(word, this.pos)) this.pos += word.length;
    else this.fail(`expected a JSON value, found ${this.found()}`);
  }

  private parseValue(depth: number): JsonValue {
    const c = this.text[this.pos];
    switch (c) {
      case "{":
        return this.parseObject(depth);
      case "[":
        return this.parseArray(depth);
      case '"':
        return this.parseString();
      case "t":
        this.expectLiteral("true");
        return true;
      case "f":
        this.expectLiteral("false");
        return false;
      case "n":
        this.expectLiteral("null");
        return null;
      default:
        if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.parseNumber();
        return this.fail(`expected a JSON value, found ${this.found()}`);
    }
  }

  private enter(depth: number): void {
    if (depth >= MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    this.pos++;
    this.skipWhitespace();
  }

  private parseObject(depth: number): JsonObject {
    this.enter(depth);
    const obj: JsonObject = new Map();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return obj;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail(`expected a string key, found ${this.found()}`);
      const keyAt = this.pos;
      const key = this.parseString();
      if (obj.has(key)) {
        this.pos = keyAt;
        this.fail(`duplicate key ${JSON.stringify(key)}`);
      }
      this.skipWhitespace();
      if (this.text[this.pos] !== ":") this.fail(`expected ':' after a key, found ${this.found()}`);
      this.pos++;
      this.skipWhitespace();
      obj.set(key, this.parseValue(depth + 1));
      this.skipWhitespace();
      const sep = this.text[this.pos];
      this.pos++;
      if (sep === "}") return obj;
      if (sep !== ",") {
        this.pos--;
        this.fail(`expected ',' or '}' in an object, found ${this.found()}`);
      }
      this.skipWhitespace();
    }
  }

  private parseArray(depth: number): JsonValue[] {
    this.enter(depth);
    const arr: JsonValue[] = [];
    if (this.text[this.pos] === "]") {
      this.pos++;
      return arr;
    }
    for (;;) {
      arr.push(this.parseValue(depth + 1));
      this.skipWhitespace();
      const sep = this.text[this.pos];
      this.pos++;
      if (sep === "]") return arr;
      if (sep !== ",") {
        this.pos--;
        this.fail(`expected ',' or ']' in an array, found ${this.found()}`);
      }
      this.skipWhitespace();
    }
  }

  private parseString(): string {
    const t = this.text;
    this.pos++;
    let out = "";
    let chunkStart = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("unterminated string");
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(chunkStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("control character in a string (it must be escaped)");
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(chunkStart, this.pos);
      const esc = t[this.pos + 1];
      this.pos += 2;
      switch (esc) {
        case '"':
        case "\\":
        case "/":
          out += esc;
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const digits = t.slice(this.pos, this.pos + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail("\\u must be followed by four hex digits");
          out += String.fromCharCode(Number.parseInt(digits, 16));
          this.pos += 4;
          break;
        }
        default:
          this.pos -= 1;
          this.fail(`invalid escape \\${esc ?? ""}`);
      }
      chunkStart = this.pos;
    }
  }

  private parseNumber(): bigint | number {
    const t = this.text;
    const start = this.pos;
    const digits = () => {
      const from = this.pos;
      while (this.pos < t.length && t.charCodeAt(this.pos) >= 0x30 && t.charCodeAt(this.pos) <= 0x39)
        this.pos++;
      return this.pos - from;
    };
    if (t[this.pos] === "-") this.pos++;
    if (t[this.pos] === "0") this.pos++;
    else if (digits() === 0) this.fail("a number needs digits");
    let integer = true;
    if (t[this.pos] === ".") {
      integer = false;
      this.pos++;
      if (digits() === 0) this.fail("a decimal point must be followed by digits");
    }
    if (t[this.pos] === "e" || t[this.pos] === "E") {
      integer = false;
      this.pos++;
      if (t[this.pos] === "+" || t[this.pos] === "-") this.pos++;
      if (digits() === 0) this.fail("an exponent needs digits");
    }
    const literal = t.slice(start, this.pos);
    return integer ? BigInt(literal) : Number(literal);
  }
}

function describe(v: JsonValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "bigint") return `the integer ${v}`;
  if (typeof v === "number") return `the number ${v}`;
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 24 ? `${v.slice(0, 24)}…` : v)}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return "an object";
}

/** Typed access to a parsed document; every failure names the JSON path of the offending value. */
class Fields {
  constructor(private readonly where: string) {}

  fail(path: string, reason: string): never {
    throw decodeError(this.where, `${path}: ${reason}`);
  }

  object(v: JsonValue | undefined, path: string): JsonObject {
    if (v instanceof Map) return v;
    return this.fail(path, `expected an object, got ${describe(v)}`);
  }

  array(v: JsonValue | undefined, path: string): JsonValue[] {
    if (Array.isArray(v)) return v;
    return this.fail(path, `expected an array, got ${describe(v)}`);
  }

  required(obj: JsonObject, key: string, path: string): JsonValue {
    const v = obj.get(key);
    if (v === undefined) this.fail(join(path, key), "is missing");
    return v;
  }

  u64(v: JsonValue | undefined, path: string): bigint {
    if (typeof v === "bigint" && v >= 0n && v < U64_LIMIT) return v;
    return this.fail(path, `expected a non-negative integer below 2^64, got ${describe(v)}`);
  }

  u32(v: JsonValue | undefined, path: string): number {
    if (typeof v === "bigint" && v >= 0n && v < U32_LIMIT) return Number(v);
    return this.fail(path, `expected a non-negative integer below 2^32, got ${describe(v)}`);
  }

  bool(v: JsonValue | undefined, path: string): boolean {
    if (typeof v === "boolean") return v;
    return this.fail(path, `expected true or false, got ${describe(v)}`);
  }
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function decodeData(f: Fields, v: JsonValue, path: string): KvCacheEventData {
  if (typeof v === "string") {
    if (v === "cleared") return { type: "cleared" };
    return f.fail(path, `unknown event kind ${JSON.stringify(v)} (expected "cleared" or an object)`);
  }
  const obj = f.object(v, path);
  if (obj.size !== 1) {
    const keys = [...obj.keys()].map((k) => JSON.stringify(k)).join(", ");
    return f.fail(
      path,
      `expected exactly one of "stored", "removed", "cleared" as its only key, got {${keys}}`,
    );
  }
  const [kind, body] = obj.entries().next().value as [string, JsonValue];
  const bodyPath = join(path, kind);
  switch (kind) {
    case "stored": {
      const stored = f.object(body, bodyPath);
      const parent = stored.get("parent_hash");
      const parentHash =
        parent === undefined || parent === null ? null : f.u64(parent, join(bodyPath, "parent_hash"));
      const blocksPath = join(bodyPath, "blocks");
      const blocks: StoredBlock[] = f
        .array(f.required(stored, "blocks", bodyPath), blocksPath)
        .map((b, i) => {
          const blockPath = `${blocksPath}[${i}]`;
          const block = f.object(b, blockPath);
          return {
            blockHash: f.u64(f.required(block, "block_hash", blockPath), join(blockPath, "block_hash")),
            tokensHash: f.u64(f.required(block, "tokens_hash", blockPath), join(blockPath, "tokens_hash")),
          };
        });
      return { type: "stored", parentHash, blocks };
    }
    case "removed": {
      const removed = f.object(body, bodyPath);
      const listPath = join(bodyPath, "block_hashes");
      const list = f.array(f.required(removed, "block_hashes", bodyPath), listPath);
      return { type: "removed", blockHashes: list.map((h, i) => f.u64(h, `${listPath}[${i}]`)) };
    }
    case "cleared":
      // serde_json also accepts a unit variant written in map form, as {"cleared": null}.
      if (body !== null) f.fail(bodyPath, `expected null, got ${describe(body)}`);
      return { type: "cleared" };
    default:
      return f.fail(
        path,
        `unknown event kind ${JSON.stringify(kind)} (expected "stored", "removed" or "cleared")`,
      );
  }
}

/** Decodes a KvCacheEvent object (`event_id`, `data`, `dp_rank`) found at `path`. */
function decodeKvCacheEvent(
  f: Fields,
  v: JsonValue | undefined,
  path: string,
  workerId: string,
): RouterEvent {
  const ev = f.object(v, path);
  const eventId = f.u64(f.required(ev, "event_id", path), join(path, "event_id"));
  const data = decodeData(f, f.required(ev, "data", path), join(path, "data"));
  const rank = ev.get("dp_rank");
  const dpRank = rank === undefined ? 0 : f.u32(rank, join(path, "dp_rank"));
  return { workerId, dpRank, eventId, data };
}

function decodeWorkerId(f: Fields, v: JsonValue): string {
  if (typeof v === "bigint") return f.u64(v, "worker_id").toString();
  if (typeof v === "string" && v !== "") return v;
  return f.fail(
    "worker_id",
    `expected a non-negative integer below 2^64 or a non-empty string, got ${describe(v)}`,
  );
}

function parse(text: string, where: string): JsonValue {
  if (typeof text !== "string") throw decodeError(where, `expected JSON text, got ${typeof text}`);
  return new JsonParser(text, where).parseDocument();
}

/** Decodes one serde `RouterEvent`; `where` (e.g. a file and line, or a NATS subject) prefixes every error. */
export function decodeRouterEventJson(text: string, where = "RouterEvent JSON"): RouterEvent {
  const f = new Fields(where);
  const root = f.object(parse(text, where), "(root)");
  const workerId = decodeWorkerId(f, f.required(root, "worker_id", ""));
  return decodeKvCacheEvent(f, f.required(root, "event", ""), "event", workerId);
}

/**
 * Decodes a serde `KvCacheEvents` batch (`{"events": [KvCacheEvent…], "shutdown": bool}`), which carries no worker
 * id of its own: the caller says whose batch it is.
 */
export function decodeKvCacheEventsJson(
  text: string,
  workerId: string,
  where = "KvCacheEvents JSON",
): { events: RouterEvent[]; shutdown: boolean } {
  if (typeof workerId !== "string" || workerId === "") {
    throw new TypeError("decodeKvCacheEventsJson needs the non-empty id of the worker that sent the batch");
  }
  const f = new Fields(where);
  const root = f.object(parse(text, where), "(root)");
  const events = f
    .array(f.required(root, "events", ""), "events")
    .map((e, i) => decodeKvCacheEvent(f, e, `events[${i}]`, workerId));
  const shutdown = f.bool(f.required(root, "shutdown", ""), "shutdown");
  return { events, shutdown };
}

function u64Json(v: BlockHash, what: string): string {
  if (typeof v !== "bigint" || v < 0n || v >= U64_LIMIT) {
    throw new RangeError(`${what} must be a bigint in [0, 2^64), got ${String(v)}`);
  }
  return v.toString();
}

function encodeData(d: KvCacheEventData): string {
  switch (d.type) {
    case "stored": {
      const parent = d.parentHash === null ? "null" : u64Json(d.parentHash, "parentHash");
      const blocks = d.blocks.map(
        (b, i) =>
          `{"block_hash":${u64Json(b.blockHash, `blocks[${i}].blockHash`)},"tokens_hash":${u64Json(b.tokensHash, `blocks[${i}].tokensHash`)}}`,
      );
      return `{"stored":{"parent_hash":${parent},"blocks":[${blocks.join(",")}]}}`;
    }
    case "removed":
      return `{"removed":{"block_hashes":[${d.blockHashes.map((h, i) => u64Json(h, `blockHashes[${i}]`)).join(",")}]}}`;
    case "cleared":
      return '"cleared"';
    default:
      throw new TypeError(`unknown KV event data type ${JSON.stringify((d as { type: unknown }).type)}`);
  }
}

function encodeKvCacheEvent(ev: RouterEvent): string {
  if (!Number.isInteger(ev.dpRank) || ev.dpRank < 0 || ev.dpRank >= 2 ** 32) {
    throw new RangeError(`dpRank must be an integer in [0, 2^32), got ${String(ev.dpRank)}`);
  }
  return `{"event_id":${u64Json(ev.eventId, "eventId")},"data":${encodeData(ev.data)},"dp_rank":${ev.dpRank}}`;
}

/**
 * Serialises a RouterEvent as Dynamo does. A worker id that is a canonical decimal u64 (a Dynamo lease id) is
 * written as a JSON number; any other name is written as a string, which Dynamo itself would not accept but which
 * round-trips through `decodeRouterEventJson`.
 */
export function encodeRouterEventJson(ev: RouterEvent): string {
  if (typeof ev.workerId !== "string" || ev.workerId === "") {
    throw new TypeError(`workerId must be a non-empty string, got ${JSON.stringify(ev.workerId)}`);
  }
  const asNumber = DECIMAL_U64.test(ev.workerId) && BigInt(ev.workerId) < U64_LIMIT;
  const worker = asNumber ? ev.workerId : JSON.stringify(ev.workerId);
  return `{"worker_id":${worker},"event":${encodeKvCacheEvent(ev)}}`;
}

/** Serialises events as a serde `KvCacheEvents` batch; the batch format has no worker id, so theirs are dropped. */
export function encodeKvCacheEventsJson(events: readonly RouterEvent[], shutdown: boolean): string {
  return `{"events":[${events.map(encodeKvCacheEvent).join(",")}],"shutdown":${shutdown ? "true" : "false"}}`;
}
