/**
 * An open-addressing hash table from keys of two or three u32 words to non-negative int32 values, in typed
 * arrays: no object or BigInt per entry, so millions of entries cost tens of bytes each and lookups do not
 * allocate. Linear probing; deletion shifts later entries back (no tombstones), so probe chains stay short.
 */
export class HashTable {
  readonly keyWords: 2 | 3;
  private keys: Uint32Array;
  private values: Int32Array;
  private used: Uint8Array;
  private mask: number;
  private count = 0;

  constructor(keyWords: 2 | 3, initialCapacity = 1024) {
    this.keyWords = keyWords;
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.keys = new Uint32Array(cap * keyWords);
    this.values = new Int32Array(cap);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table's arrays. */
  get bytes(): number {
    return this.keys.byteLength + this.values.byteLength + this.used.byteLength;
  }

  private slotOf(a: number, b: number, c: number): number {
    let h = Math.imul(a ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(c, 0x85ebca77), 0xc2b2ae3d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x27d4eb2f);
    h ^= h >>> 13;
    return h & this.mask;
  }

  private matches(slot: number, a: number, b: number, c: number): boolean {
    const k = slot * this.keyWords;
    return this.keys[k] === a && this.keys[k + 1] === b && (this.keyWords === 2 || this.keys[k + 2] === c);
  }

  /** The value for the key, or −1. */
  get(a: number, b: number, c = 0): number {
    let s = this.slotOf(a, b, c);
    while (this.used[s]) {
      if (this.matches(s, a, b, c)) return this.values[s]!;
      s = (s + 1) & this.mask;
    }
    return -1;
  }

  set(a: number, b: number, c: number, value: number): void {
    if ((this.count + 1) * 2 > this.values.length) this.grow();
    let s = this.slotOf(a, b, c);
    while (this.used[s]) {
      if (this.matches(s, a, b, c)) {
        this.values[s] = value;
        return;
      }
      s = (s + 1) & this.mask;
    }
    const k = s * this.keyWords;
    this.keys[k] = a;
    this.keys[k + 1] = b;
    if (this.keyWords === 3) this.keys[k + 2] = c;
    this.values[s] = value;
    this.used[s] = 1;
    this.count++;
  }

  /** Removes the key; returns its value, or −1 when absent. */
  delete(a: number, b: number, c = 0): number {
    let s = this.slotOf(a, b, c);
    while (this.used[s]) {
      if (this.matches(s, a, b, c)) {
        const value = this.values[s]!;
        this.removeSlot(s);
        return value;
      }
      s = (s + 1) & this.mask;
    }
    return -1;
  }

  private removeSlot(hole: number): void {
    this.used[hole] = 0;
    this.count--;
    let s = (hole + 1) & this.mask;
    // Backward-shift: move every later entry of the probe run whose home slot does not lie between hole and it.
    while (this.used[s]) {
      const k = s * this.keyWords;
      const home = this.slotOf(this.keys[k]!, this.keys[k + 1]!, this.keyWords === 3 ? this.keys[k + 2]! : 0);
      const fromHole = (s - hole) & this.mask;
      const fromHome = (s - home) & this.mask;
      if (fromHome >= fromHole) {
        this.keys.copyWithin(hole * this.keyWords, k, k + this.keyWords);
        this.values[hole] = this.values[s]!;
        this.used[hole] = 1;
        this.used[s] = 0;
        hole = s;
      }
      s = (s + 1) & this.mask;
    }
  }

  /** Visits every entry; the callback must not modify the table. */
  forEach(fn: (a: number, b: number, c: number, value: number) => void): void {
    for (let s = 0; s < this.values.length; s++) {
      if (!this.used[s]) continue;
      const k = s * this.keyWords;
      fn(this.keys[k]!, this.keys[k + 1]!, this.keyWords === 3 ? this.keys[k + 2]! : 0, this.values[s]!);
    }
  }

  private grow(): void {
    const { keys, values, used } = this;
    const cap = values.length * 2;
    this.keys = new Uint32Array(cap * this.keyWords);
    this.values = new Int32Array(cap);
    this.used = new Uint8Array(cap);
    this.mask = cap - 1;
    this.count = 0;
    for (let s = 0; s < values.length; s++) {
      if (!used[s]) continue;
      const k = s * this.keyWords;
      this.set(keys[k]!, keys[k + 1]!, this.keyWords === 3 ? keys[k + 2]! : 0, values[s]!);
    }
  }
}
