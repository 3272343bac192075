import type { BlockHasher } from "../../kv/block-hash.ts";
import { eventIdFor, MAX_EVENTS_PER_BATCH, SEQ_LIMIT } from "../../kv/codec-vllm.ts";
import type { RouterEvent, StoredBlock } from "../../kv/events.ts";

/**
 * A direct reader for the KV-event payloads engines actually send — `[ts, [event…], dp_rank?]` with events as
 * tagged maps or tagged arrays — producing exactly what `decodeVllmMultipart` produces, without building the
 * generic msgpack value first: token ids go straight from the bytes into the router's block hasher, hashes
 * straight into u64s. It is the subscriber's hot path (the generic decode costs several times the index update).
 * Anything it does not expect — a map-shaped batch, a malformed field — makes it return null, and the caller falls
 * back to `decodeVllmMultipart`, which gives the precise error.
 */
export interface FastDecoded {
  dpRank: number;
  events: RouterEvent[];
  skipped: number;
}

class Malformed extends Error {}
const MALFORMED = new Malformed();

const STORED = "BlockStored";
const REMOVED = "BlockRemoved";
const CLEARED = "AllBlocksCleared";
const U32 = 2 ** 32;

export class VllmFastDecoder {
  private readonly hasher: BlockHasher;
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(new ArrayBuffer(8));
  private pos = 0;
  private tokens = new Uint32Array(1024);
  private readonly local = new Uint32Array(2);
  private readonly local64 = new BigUint64Array(this.local.buffer);
  private readonly utf8 = new TextDecoder();

  constructor(hasher: BlockHasher) {
    this.hasher = hasher;
  }

  decode(payload: Uint8Array, seq: bigint, workerId: string, defaultRank: number): FastDecoded | null {
    if (seq >= SEQ_LIMIT) return null;
    this.buf = payload;
    this.view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    this.pos = 0;
    try {
      const n = this.arrayHeader();
      if (n < 2) return null;
      this.number();
      const count = this.arrayHeader();
      if (count > MAX_EVENTS_PER_BATCH) return null;
      // The rank comes after the events: read them into a holding list first.
      const parsed: Parsed[] = [];
      let skipped = 0;
      for (let i = 0; i < count; i++) {
        const ev = this.event();
        if (ev === null) skipped++;
        parsed.push(ev);
      }
      let dpRank = defaultRank;
      if (n >= 3) {
        const r = this.optionalUint();
        if (r !== null && r >= U32) return null;
        if (r !== null) dpRank = r;
      }
      for (let k = 3; k < n; k++) this.skip();
      if (this.pos !== payload.length) return null;
      const events: RouterEvent[] = [];
      for (let i = 0; i < parsed.length; i++) {
        const p = parsed[i];
        if (p === null || p === undefined) continue;
        events.push({ workerId, dpRank, eventId: eventIdFor(seq, i), data: p });
      }
      return { dpRank, events, skipped };
    } catch (e) {
      if (e === MALFORMED || e instanceof RangeError) return null;
      throw e;
    }
  }

  private byte(): number {
    if (this.pos >= this.buf.length) throw MALFORMED;
    return this.buf[this.pos++]!;
  }

  private arrayHeader(): number {
    const b = this.byte();
    if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
    if (b === 0xdc) return this.u16();
    if (b === 0xdd) return this.u32();
    throw MALFORMED;
  }

  /** A map header's entry count, or −1 when the value is an array (its length then in `arrayLength`). */
  private mapOrArray(): { map: boolean; n: number } {
    const b = this.buf[this.pos];
    if (b !== undefined && ((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf)) {
      this.pos++;
      return { map: true, n: b <= 0x8f ? b & 0x0f : b === 0xde ? this.u16() : this.u32() };
    }
    return { map: false, n: this.arrayHeader() };
  }

  private u16(): number {
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  private strLength(): number {
    const b = this.byte();
    if (b >= 0xa0 && b <= 0xbf) return b & 0x1f;
    if (b === 0xd9) return this.byte();
    if (b === 0xda) return this.u16();
    if (b === 0xdb) return this.u32();
    throw MALFORMED;
  }

  private str(): string {
    const n = this.strLength();
    if (this.pos + n > this.buf.length) throw MALFORMED;
    const at = this.pos;
    this.pos += n;
    // Keys and tags repeat in every event: match their bytes instead of decoding them each time.
    const known = KNOWN_BY_LENGTH[n];
    if (known !== undefined) {
      for (const [bytes, text] of known) {
        let k = 0;
        while (k < n && this.buf[at + k] === bytes[k]) k++;
        if (k === n) return text;
      }
    }
    return this.utf8.decode(this.buf.subarray(at, at + n));
  }

  private isNil(): boolean {
    if (this.buf[this.pos] === 0xc0) {
      this.pos++;
      return true;
    }
    return false;
  }

  private number(): void {
    const b = this.byte();
    if (b === 0xcb) this.pos += 8;
    else if (b === 0xca) this.pos += 4;
    else {
      this.pos--;
      this.uint();
    }
  }

  /** A non-negative integer that fits a double exactly. */
  private uint(): number {
    const b = this.byte();
    if (b <= 0x7f) return b;
    if (b === 0xcc) return this.byte();
    if (b === 0xcd) return this.u16();
    if (b === 0xce) return this.u32();
    if (b === 0xcf || b === 0xd3) {
      const v = this.view.getBigUint64(this.pos);
      this.pos += 8;
      if (v >= 2n ** 53n) throw MALFORMED;
      return Number(v);
    }
    if (b === 0xd0 || b === 0xd1 || b === 0xd2) {
      const v =
        b === 0xd0
          ? this.view.getInt8(this.pos)
          : b === 0xd1
            ? this.view.getInt16(this.pos)
            : this.view.getInt32(this.pos);
      this.pos += b === 0xd0 ? 1 : b === 0xd1 ? 2 : 4;
      if (v < 0) throw MALFORMED;
      return v;
    }
    throw MALFORMED;
  }

  private optionalUint(): number | null {
    return this.isNil() ? null : this.uint();
  }

  /** A block hash as the codec reads it: any integer as its u64 bits, bytes by their last 8 (big-endian). */
  private hash(): bigint {
    const b = this.byte();
    if (b <= 0x7f) return BigInt(b);
    if (b >= 0xe0) return BigInt.asUintN(64, BigInt(b - 256));
    const v = this.view;
    const at = this.pos;
    switch (b) {
      case 0xcc:
        this.pos += 1;
        return BigInt(v.getUint8(at));
      case 0xcd:
        this.pos += 2;
        return BigInt(v.getUint16(at));
      case 0xce:
        this.pos += 4;
        return BigInt(v.getUint32(at));
      case 0xcf:
      case 0xd3:
        this.pos += 8;
        return v.getBigUint64(at);
      case 0xd0:
        this.pos += 1;
        return BigInt.asUintN(64, BigInt(v.getInt8(at)));
      case 0xd1:
        this.pos += 2;
        return BigInt.asUintN(64, BigInt(v.getInt16(at)));
      case 0xd2:
        this.pos += 4;
        return BigInt.asUintN(64, BigInt(v.getInt32(at)));
      case 0xc4:
      case 0xc5:
      case 0xc6: {
        const n = b === 0xc4 ? this.byte() : b === 0xc5 ? this.u16() : this.u32();
        if (n === 0 || this.pos + n > this.buf.length) throw MALFORMED;
        let h = 0n;
        for (let i = Math.max(0, n - 8); i < n; i++) h = (h << 8n) | BigInt(this.buf[this.pos + i]!);
        this.pos += n;
        return h;
      }
      default:
        throw MALFORMED;
    }
  }

  private hashes(): bigint[] {
    const n = this.arrayHeader();
    const out = new Array<bigint>(n);
    for (let i = 0; i < n; i++) out[i] = this.hash();
    return out;
  }

  /** Token ids into the scratch array; returns how many. */
  private tokenIds(): number {
    const n = this.arrayHeader();
    if (this.tokens.length < n) this.tokens = new Uint32Array(n * 2);
    const t = this.tokens;
    const buf = this.buf;
    const end = buf.length;
    // Every id is a few bytes: read the usual encodings (fixint, uint 8/16/32) in place, with the position in a
    // local, and leave the rest to `uint`.
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const b = p < end ? buf[p]! : -1;
      if (b >= 0 && b <= 0x7f) {
        t[i] = b;
        p += 1;
      } else if (b === 0xce && p + 5 <= end) {
        t[i] = (buf[p + 1]! << 24) | (buf[p + 2]! << 16) | (buf[p + 3]! << 8) | buf[p + 4]!;
        p += 5;
      } else if (b === 0xcd && p + 3 <= end) {
        t[i] = (buf[p + 1]! << 8) | buf[p + 2]!;
        p += 3;
      } else if (b === 0xcc && p + 2 <= end) {
        t[i] = buf[p + 1]!;
        p += 2;
      } else {
        this.pos = p;
        const v = this.uint();
        if (v >= U32) throw MALFORMED;
        t[i] = v;
        p = this.pos;
      }
    }
    this.pos = p;
    return n;
  }

  /** Skips one value of any type. */
  private skip(): void {
    const b = this.byte();
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return;
    if (b >= 0x80 && b <= 0x8f) this.skipN((b & 0x0f) * 2);
    else if (b >= 0x90 && b <= 0x9f) this.skipN(b & 0x0f);
    else if (b >= 0xa0 && b <= 0xbf) this.advance(b & 0x1f);
    else if (b === 0xdc) this.skipN(this.u16());
    else if (b === 0xdd) this.skipN(this.u32());
    else if (b === 0xde) this.skipN(this.u16() * 2);
    else if (b === 0xdf) this.skipN(this.u32() * 2);
    else this.advance(this.scalarLength(b));
  }

  /** Bytes after the type byte of a string, binary, number or extension value. */
  private scalarLength(b: number): number {
    switch (b) {
      case 0xc4:
      case 0xd9:
        return this.byte();
      case 0xc5:
      case 0xda:
        return this.u16();
      case 0xc6:
      case 0xdb:
        return this.u32();
      case 0xcc:
      case 0xd0:
        return 1;
      case 0xcd:
      case 0xd1:
        return 2;
      case 0xce:
      case 0xd2:
      case 0xca:
        return 4;
      case 0xcf:
      case 0xd3:
      case 0xcb:
        return 8;
      case 0xd4:
        return 2;
      case 0xd5:
        return 3;
      case 0xd6:
        return 5;
      case 0xd7:
        return 9;
      case 0xd8:
        return 17;
      case 0xc7:
        return this.byte() + 1;
      case 0xc8:
        return this.u16() + 1;
      case 0xc9:
        return this.u32() + 1;
      default:
        throw MALFORMED;
    }
  }

  private skipN(n: number): void {
    for (let i = 0; i < n; i++) this.skip();
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw MALFORMED;
    this.pos += n;
  }

  /** Whether a `medium` value (already positioned on it) names device memory: nil or "GPU" in any case. */
  private onDevice(): boolean {
    if (this.isNil()) return true;
    return this.str().toUpperCase() === "GPU";
  }

  /** One event: its data, or null when the codec would skip it (other tier, unknown type). */
  private event(): Parsed {
    const { map, n } = this.mapOrArray();
    let type: string | undefined;
    let hashes: bigint[] | undefined;
    let parent: bigint | null = null;
    let nTokens = -1;
    let blockSize = -1;
    let device = true;
    const field = (name: string) => {
      switch (name) {
        case "type":
          type = this.str();
          return;
        case "block_hashes":
          hashes = this.hashes();
          return;
        case "parent_block_hash":
          parent = this.isNil() ? null : this.hash();
          return;
        case "token_ids":
          nTokens = this.tokenIds();
          return;
        case "block_size":
          blockSize = this.uint();
          return;
        case "medium":
          device = this.onDevice();
          return;
        default:
          this.skip();
      }
    };
    if (map) {
      for (let i = 0; i < n; i++) field(this.str());
    } else {
      if (n < 1) throw MALFORMED;
      type = this.str();
      const order = type === STORED ? STORED_FIELDS : type === REMOVED ? REMOVED_FIELDS : [];
      for (let i = 1; i < n; i++) {
        const name = order[i - 1];
        if (name === undefined || name === "lora_id") this.skip();
        else field(name);
      }
    }
    if (type === STORED) {
      if (hashes === undefined || nTokens < 0 || blockSize < 1) throw MALFORMED;
      if (!device) return null;
      if (nTokens !== hashes.length * blockSize) throw MALFORMED;
      return { type: "stored", parentHash: parent, blocks: this.storedBlocks(hashes, blockSize) };
    }
    if (type === REMOVED) {
      if (hashes === undefined) throw MALFORMED;
      return device ? { type: "removed", blockHashes: hashes } : null;
    }
    if (type === CLEARED) return { type: "cleared" };
    if (type === undefined) throw MALFORMED;
    return null;
  }

  private storedBlocks(hashes: bigint[], blockSize: number): StoredBlock[] {
    // Token ids sit in the scratch array as u32 words, the router hashes their little-endian bytes.
    const blocks = new Array<StoredBlock>(hashes.length);
    for (let b = 0; b < hashes.length; b++) {
      this.hasher.hashWordsInto(this.tokens, b * blockSize, blockSize, this.local, 0);
      blocks[b] = { blockHash: hashes[b]!, tokensHash: this.local64[0]! };
    }
    return blocks;
  }
}

type Parsed = RouterEvent["data"] | null;

const KNOWN_BY_LENGTH: [Uint8Array, string][][] = [];
for (const text of [
  "type",
  "block_hashes",
  "parent_block_hash",
  "token_ids",
  "block_size",
  "lora_id",
  "medium",
  STORED,
  REMOVED,
  CLEARED,
  "GPU",
]) {
  const bytes = new TextEncoder().encode(text);
  const same = KNOWN_BY_LENGTH[bytes.length] ?? [];
  same.push([bytes, text]);
  KNOWN_BY_LENGTH[bytes.length] = same;
}

// Positions of legacy tagged-array events after the tag (see codec-vllm.ts).
const STORED_FIELDS = ["block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium"];
const REMOVED_FIELDS = ["block_hashes", "medium"];
