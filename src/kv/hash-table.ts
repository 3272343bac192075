/** Where `prefetch` leaves what it loaded. */
const PREFETCHED = new Uint32Array(1);

/** Values are stored plus one in a u32 slot (0 marks empty): they must stay within int32. */
const MAX_VALUE = 0x7fffffff;

function checkValue(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > MAX_VALUE)
    throw new RangeError(`hash table value ${v} is outside 0..2^31−1`);
  return v;
}

export interface SharedHashTable {
  keyWords: 2 | 3;
  slots: Uint32Array;
  count: number;
}

/**
 * An open-addressing hash table from keys of two or three u32 words to non-negative int32 values, in one typed
 * array: no object or BigInt per entry, so millions of entries cost tens of bytes each and lookups do not
 * allocate. A slot is the key words followed by value + 1 (0 marks an empty slot), so a probe touches one cache
 * line. Linear probing; deletion shifts later entries back (no tombstones), so probe chains stay short.
 */
export class HashTable {
  readonly keyWords: 2 | 3;
  private readonly stride: number;
  private slots: Uint32Array;
  private mask: number;
  private count = 0;
  /** Slot offsets of the keys `prefetch` loads. */
  private offsets = new Int32Array(64);

  constructor(keyWords: 2 | 3, initialCapacity = 1024) {
    this.keyWords = keyWords;
    this.stride = keyWords + 1;
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.slots = new Uint32Array(cap * this.stride);
    this.mask = cap - 1;
  }

  /** The table's contents in memory another thread can read (a SharedArrayBuffer), for `fromShared`. */
  share(): SharedHashTable {
    const slots = new Uint32Array(new SharedArrayBuffer(this.slots.byteLength));
    slots.set(this.slots);
    return { keyWords: this.keyWords, slots, count: this.count };
  }

  /** A table over shared contents (see `share`); every thread using it must only read it. */
  static fromShared(shared: SharedHashTable): HashTable {
    const table = new HashTable(shared.keyWords, 1);
    const slotCount = shared.slots.length / table.stride;
    if (!Number.isInteger(slotCount) || slotCount < 16 || (slotCount & (slotCount - 1)) !== 0)
      throw new RangeError(
        `shared hash table has ${shared.slots.length} words, not a power-of-two slot count`,
      );
    table.slots = shared.slots;
    table.mask = slotCount - 1;
    table.count = shared.count;
    return table;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table. */
  get bytes(): number {
    return this.slots.byteLength;
  }

  private home(a: number, b: number, c: number): number {
    let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(c, 0x85ebca77), 0xc2b2ae3d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x27d4eb2f);
    h ^= h >>> 13;
    return h & this.mask;
  }

  /** Offset of the key's slot, or of the empty slot where it would go. */
  private find(a: number, b: number, c: number): number {
    const slots = this.slots;
    const stride = this.stride;
    const mask = this.mask;
    let s = this.home(a, b, c);
    if (stride === 3) {
      for (;;) {
        const o = s * 3;
        if (slots[o + 2] === 0 || (slots[o] === a && slots[o + 1] === b)) return o;
        s = (s + 1) & mask;
      }
    }
    for (;;) {
      const o = s * 4;
      if (slots[o + 3] === 0 || (slots[o] === a && slots[o + 1] === b && slots[o + 2] === c)) return o;
      s = (s + 1) & mask;
    }
  }

  private valueAt(o: number): number {
    return this.slots[o + this.keyWords]! - 1;
  }

  private occupied(o: number): boolean {
    return this.slots[o + this.keyWords] !== 0;
  }

  private insertAt(o: number, a: number, b: number, c: number, value: number): void {
    checkValue(value);
    this.slots[o] = a;
    this.slots[o + 1] = b;
    if (this.keyWords === 3) this.slots[o + 2] = c;
    this.slots[o + this.keyWords] = value + 1;
    this.count++;
  }

  /**
   * Loads the home slots of `n` keys, key k's first two words at `keys[at + k·step]` and the next (third key
   * word) `c`: a table much larger than the caches misses on every probe, and loads issued back to back in a
   * short loop have their misses in flight together, so the probes that follow hit instead of waiting in turn.
   */
  prefetch(keys: Uint32Array, at: number, step: number, n: number, c = 0): void {
    if (this.offsets.length < 2 * n) this.offsets = new Int32Array(4 * n);
    const offsets = this.offsets;
    const { stride, mask, keyWords } = this;
    // The home slot's first word and the next slot's last: a probe reads the one, a probe run that goes on or the
    // backward shift of a delete the other, and a slot may straddle two cache lines.
    for (let k = 0, i = at; k < n; k++, i += step) {
      const h = this.home(keys[i]!, keys[i + 1]!, c);
      offsets[2 * k] = h * stride;
      offsets[2 * k + 1] = ((h + 1) & mask) * stride + keyWords;
    }
    // The loads alone, apart from the hashing: the fewer instructions per load, the more of them the processor
    // has issued while the first still waits.
    const slots = this.slots;
    let seen = 0;
    for (let k = 0; k < 2 * n; k++) seen ^= slots[offsets[k]!]!;
    // Stored where nothing reads it, so the loads are not optimised away.
    PREFETCHED[0] = seen;
  }

  /** The value for the key, or −1. */
  get(a: number, b: number, c = 0): number {
    const o = this.find(a, b, c);
    return this.occupied(o) ? this.valueAt(o) : -1;
  }

  /** The key's value, inserting `value` first when absent (one probe either way). */
  getOrInsert(a: number, b: number, c: number, value: number): number {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const o = this.find(a, b, c);
    if (this.occupied(o)) return this.valueAt(o);
    this.insertAt(o, a, b, c, value);
    return value;
  }

  set(a: number, b: number, c: number, value: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const o = this.find(a, b, c);
    if (this.occupied(o)) this.slots[o + this.keyWords] = checkValue(value) + 1;
    else this.insertAt(o, a, b, c, value);
  }

  /**
   * Adds `delta` to the key's value in one probe (inserting it at `delta` when absent) and returns the new value;
   * a result of 0 removes the key. For reference counts.
   */
  adjust(a: number, b: number, c: number, delta: number): number {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const o = this.find(a, b, c);
    const v = (this.occupied(o) ? this.valueAt(o) : 0) + delta;
    if (v < 0) throw new RangeError(`hash table values must stay non-negative, got ${v}`);
    if (!this.occupied(o)) {
      if (v !== 0) this.insertAt(o, a, b, c, v);
      return v;
    }
    checkValue(v);
    if (v === 0) this.removeAt(o);
    else this.slots[o + this.keyWords] = v + 1;
    return v;
  }

  /** Removes the key; returns its value, or −1 when absent. */
  delete(a: number, b: number, c = 0): number {
    const o = this.find(a, b, c);
    if (!this.occupied(o)) return -1;
    const value = this.valueAt(o);
    this.removeAt(o);
    return value;
  }

  private removeAt(offset: number): void {
    const { slots, stride, mask, keyWords } = this;
    let hole = offset / stride;
    slots[offset + keyWords] = 0;
    this.count--;
    let s = (hole + 1) & mask;
    // Backward shift: move each later entry of the probe run whose home is not between the hole and its slot.
    while (slots[s * stride + keyWords] !== 0) {
      const o = s * stride;
      const h = this.home(slots[o]!, slots[o + 1]!, keyWords === 3 ? slots[o + 2]! : 0);
      if (((s - h) & mask) >= ((s - hole) & mask)) {
        slots.copyWithin(hole * stride, o, o + stride);
        slots[o + keyWords] = 0;
        hole = s;
      }
      s = (s + 1) & mask;
    }
  }

  /** Visits every entry; the callback must not modify the table. */
  forEach(fn: (a: number, b: number, c: number, value: number) => void): void {
    const { slots, stride, keyWords } = this;
    for (let o = 0; o < slots.length; o += stride) {
      if (slots[o + keyWords] === 0) continue;
      fn(slots[o]!, slots[o + 1]!, keyWords === 3 ? slots[o + 2]! : 0, slots[o + keyWords]! - 1);
    }
  }

  private grow(): void {
    const old = this.slots;
    const { stride, keyWords } = this;
    const cap = (this.mask + 1) * 2;
    this.slots = new Uint32Array(cap * stride);
    this.mask = cap - 1;
    this.count = 0;
    for (let o = 0; o < old.length; o += stride) {
      if (old[o + keyWords] === 0) continue;
      const c = keyWords === 3 ? old[o + 2]! : 0;
      this.insertAt(this.find(old[o]!, old[o + 1]!, c), old[o]!, old[o + 1]!, c, old[o + keyWords]! - 1);
    }
  }
}
