/**
 * A global LRU cache of prefix blocks, replayed request by request: a request hits on its longest run of leading
 * blocks already cached, then all of its blocks become most recently used. Within one request the leading blocks
 * are made the most recent, so eviction takes a prefix's tail before its head, as vLLM's free-block queue does
 * (a cached tail without its head could never be hit).
 *
 * Recency is a doubly linked list over preallocated slots (a Map's insertion order would do the same job, but
 * evicting from its front skips every deleted entry and turns quadratic).
 */
export class PrefixLru {
  readonly capacityBlocks: number;
  private readonly slotOf = new Map<number, number>();
  private readonly idAt: Float64Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  /** Sentinel slot: next[HEAD] is the most recent, prev[HEAD] the least recent. */
  private readonly head: number;
  private used = 0;

  constructor(capacityBlocks: number) {
    this.capacityBlocks = Math.max(0, Math.floor(capacityBlocks));
    const n = this.capacityBlocks + 1;
    this.idAt = new Float64Array(n);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
    this.head = this.capacityBlocks;
    this.prev[this.head] = this.head;
    this.next[this.head] = this.head;
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
      s = this.used++;
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
