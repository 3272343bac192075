/**
 * The KV-cache blocks of one attention-DP rank (Dynamo mocker's classic block manager): blocks in use carry a
 * reference count; with prefix caching, full prompt blocks that fall to zero stay cached (inactive, LRU order)
 * until their space is needed, and a later request whose prompt starts with them reuses them. Blocks holding
 * generated tokens, partial blocks and (without prefix caching) every block are private to their request.
 *
 * Block ids are dense integers standing for sequence hashes (see BlockIds); events tell the KV index what the
 * rank caches.
 */
export interface BlockEvents {
  stored(ids: readonly number[]): void;
  removed(ids: readonly number[]): void;
}

const NO_EVENTS: BlockEvents = { stored: () => {}, removed: () => {} };

export class BlockPool {
  readonly capacity: number;
  readonly prefixCaching: boolean;
  private readonly events: BlockEvents;
  /** Shared full blocks in use: id → reference count. */
  private readonly active = new Map<number, number>();
  /** Cached blocks no request uses, least recently used first (Map order is insertion order). */
  private inactive = new Map<number, true>();
  private inactiveDeleted = 0;
  /** Private blocks in use. */
  private privateBlocks = 0;

  constructor(capacity: number, prefixCaching: boolean, events: BlockEvents = NO_EVENTS) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`KV capacity must be ≥ 1 block, got ${capacity}`);
    this.capacity = capacity;
    this.prefixCaching = prefixCaching;
    this.events = events;
  }

  /** Blocks held by running requests. */
  get inUse(): number {
    return this.active.size + this.privateBlocks;
  }

  /** Blocks held, cached ones included. */
  get occupied(): number {
    return this.inUse + this.inactive.size;
  }

  get cached(): number {
    return this.inactive.size;
  }

  /** Leading blocks of `ids` already on the rank (in use or cached): what a prefill can skip. */
  cachedPrefix(ids: readonly number[]): number {
    if (!this.prefixCaching) return 0;
    let n = 0;
    while (n < ids.length && (this.active.has(ids[n]!) || this.inactive.has(ids[n]!))) n++;
    return n;
  }

  /** Whether `fresh` new blocks fit, evicting cached blocks, without exceeding `limit` blocks in use. */
  private fits(fresh: number, reactivated: number, limit: number): boolean {
    const inUseAfter = this.inUse + fresh + reactivated;
    return inUseAfter <= limit && inUseAfter <= this.capacity;
  }

  /**
   * Takes the blocks of a prompt: shared `ids` (full blocks; with prefix caching, present ones are reused) and
   * `privateCount` more. Fails, changing nothing, when they do not fit under `limit` blocks in use.
   */
  acquire(ids: readonly number[], privateCount: number, limit = this.capacity): boolean {
    if (!this.prefixCaching) return this.acquirePrivate(ids.length + privateCount, limit);
    let fresh = privateCount;
    let reactivated = 0;
    for (const id of ids) {
      if (this.active.has(id)) continue;
      if (this.inactive.has(id)) reactivated++;
      else fresh++;
    }
    if (!this.fits(fresh, reactivated, limit)) return false;
    // Reuse first, so making room for the new blocks can never evict a block this prompt is about to reuse.
    const stored: number[] = [];
    for (const id of ids) {
      const rc = this.active.get(id);
      if (rc !== undefined) {
        this.active.set(id, rc + 1);
      } else if (this.inactive.delete(id)) {
        this.inactiveDeleted++;
        this.active.set(id, 1);
      } else {
        stored.push(id);
      }
    }
    this.makeRoom(stored.length + privateCount);
    for (const id of stored) this.active.set(id, 1);
    this.privateBlocks += privateCount;
    if (stored.length > 0) this.events.stored(stored);
    return true;
  }

  /** Takes private blocks (a decode crossing a block boundary, or a prompt without prefix caching). */
  acquirePrivate(count: number, limit = this.capacity): boolean {
    if (!this.fits(count, 0, limit)) return false;
    this.makeRoom(count);
    this.privateBlocks += count;
    return true;
  }

  /** Returns a request's blocks; shared ones stay cached for reuse when prefix caching is on. */
  release(ids: readonly number[], privateCount: number): void {
    this.privateBlocks -= privateCount;
    if (!this.prefixCaching) {
      this.privateBlocks -= ids.length;
      return;
    }
    // Tail first, so a prompt's head outlives its tail in the LRU order (a tail without its head is useless).
    for (let i = ids.length - 1; i >= 0; i--) {
      const id = ids[i]!;
      const rc = this.active.get(id)!;
      if (rc > 1) {
        this.active.set(id, rc - 1);
      } else {
        this.active.delete(id);
        this.inactive.set(id, true);
      }
    }
  }

  /** Evicts least recently used cached blocks until `count` more blocks fit in the capacity. */
  private makeRoom(count: number): void {
    let excess = this.occupied + count - this.capacity;
    if (excess <= 0) return;
    const evicted: number[] = [];
    for (const id of this.inactive.keys()) {
      if (excess-- <= 0) break;
      evicted.push(id);
    }
    for (const id of evicted) this.inactive.delete(id);
    this.inactiveDeleted += evicted.length;
    // Deleted entries linger at the front of a Map's order and slow its iteration; rebuilding drops them.
    if (this.inactiveDeleted > 4 * (this.inactive.size + 1024)) {
      this.inactive = new Map(this.inactive);
      this.inactiveDeleted = 0;
    }
    if (evicted.length > 0) this.events.removed(evicted);
  }
}
