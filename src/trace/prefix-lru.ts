/**
 * A global LRU cache of prefix blocks, replayed request by request: a request hits on its longest run of leading
 * blocks already cached, then all of its blocks become most recently used. Within one request the leading blocks
 * are made the most recent, so eviction takes a prefix's tail before its head, as vLLM's free-block queue does
 * (a cached tail without its head could never be hit).
 *
 * Recency is a doubly linked list over slots (a Map's insertion order would do the same job, but evicting from its
 * front skips every deleted entry and turns quadratic). Slots grow with what is cached, not with the capacity, so a
 * cache larger than the trace costs only the trace's blocks.
 */
export class PrefixLru {
  readonly capacityBlocks: number;
  private readonly slotOf = new Map<number, number>();
  private idAt = new Float64Array(1024);
  private prev = new Int32Array(1024);
  private next = new Int32Array(1024);
  /** Sentinel slot 0: next[HEAD] is the most recent, prev[HEAD] the least recent. */
  private readonly head = 0;
  private used = 0;

  constructor(capacityBlocks: number) {
    if (!(capacityBlocks >= 0))
      throw new RangeError(`LRU capacity must be >= 0 blocks, got ${capacityBlocks}`);
    this.capacityBlocks = Math.floor(capacityBlocks);
  }

  private grow(): void {
    const n = this.idAt.length * 2;
    const grown = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T) => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.idAt = grown(this.idAt, (k) => new Float64Array(k));
    this.prev = grown(this.prev, (k) => new Int32Array(k));
    this.next = grown(this.next, (k) => new Int32Array(k));
  }

  private unlink(s: number): void {
    this.next[this.prev[s]!] = this.next[s]!;
    this.prev[this.next[s]!] = this.prev[s]!;
  }

  private pushFront(s: number): void {
    const first = this.next[this.head]!;
    this.prev[s] = this.head;
    this.next[s] = first;
    this.prev[first] = s;
    this.next[this.head] = s;
  }

  private touch(id: number): void {
    let s = this.slotOf.get(id);
    if (s !== undefined) {
      this.unlink(s);
    } else if (this.used < this.capacityBlocks) {
      s = ++this.used;
      if (s >= this.idAt.length) this.grow();
    } else {
      s = this.prev[this.head]!;
      this.unlink(s);
      this.slotOf.delete(this.idAt[s]!);
    }
    if (!this.slotOf.has(id)) {
      this.slotOf.set(id, s);
      this.idAt[s] = id;
    }
    this.pushFront(s);
  }

  /** Returns how many leading blocks of `ids` were cached, then caches all of them. */
  access(ids: readonly number[]): number {
    let hits = 0;
    while (hits < ids.length && this.slotOf.has(ids[hits]!)) hits++;
    if (this.capacityBlocks === 0) return hits;
    // Touching tail to head leaves the head most recent.
    for (let i = ids.length - 1; i >= 0; i--) this.touch(ids[i]!);
    return hits;
  }
}
