import { resized } from "../kv/typed-arrays.ts";

/**
 * The KV-cache blocks of one attention-DP rank (Dynamo mocker's classic block manager): blocks in use carry a
 * reference count; with prefix caching, full prompt blocks that fall to zero stay cached (inactive, LRU order)
 * until their space is needed, and a later request whose prompt starts with them reuses them. Blocks holding
 * generated tokens, partial blocks and (without prefix caching) every block are private to their request.
 *
 * Block ids are dense integers standing for sequence hashes (see BlockIds); events tell the KV index what the
 * rank caches. Shared blocks live in slots (reference count, LRU links) found by id in a paged table.
 */
export interface BlockEvents {
  stored(ids: readonly number[]): void;
  removed(ids: readonly number[]): void;
}

const NO_EVENTS: BlockEvents = { stored: () => {}, removed: () => {} };
const NIL = -1;
const SLOT = 4;
const ID = 0;
const REFS = 1;
const PREV = 2;
const NEXT = 3;
const PAGE_BITS = 10;
const PAGE_MASK = (1 << PAGE_BITS) - 1;

/**
 * Block id → slot for dense ids: pages of 1,024 entries, allocated when an id in their range is first held, so a
 * rank's memory follows the id ranges it has held rather than every id of the run, and a lookup is two loads.
 */
class SlotTable {
  private readonly pages: (Int32Array | undefined)[] = [];

  get(id: number): number {
    const page = this.pages[id >>> PAGE_BITS];
    return page === undefined ? NIL : page[id & PAGE_MASK]!;
  }

  set(id: number, slot: number): void {
    let page = this.pages[id >>> PAGE_BITS];
    if (page === undefined) {
      page = new Int32Array(PAGE_MASK + 1).fill(NIL);
      this.pages[id >>> PAGE_BITS] = page;
    }
    page[id & PAGE_MASK] = slot;
  }

  delete(id: number): void {
    const page = this.pages[id >>> PAGE_BITS];
    if (page !== undefined) page[id & PAGE_MASK] = NIL;
  }
}

export class BlockPool {
  readonly capacity: number;
  readonly prefixCaching: boolean;
  private readonly events: BlockEvents;
  private readonly slotOf = new SlotTable();
  /** Per slot, one record: block id, reference count, LRU links (previous, next). */
  private slotData: Int32Array;
  private readonly freeSlots: number[] = [];
  /** Scratch: the slot of each block of the prompt being acquired (NIL when absent). */
  private found = new Int32Array(256);
  private slots = 0;
  /** LRU list of cached, unused blocks: head is the least recently used. */
  private head = NIL;
  private tail = NIL;
  private activeShared = 0;
  private inactiveCount = 0;
  private privateBlocks = 0;

  constructor(capacity: number, prefixCaching: boolean, events: BlockEvents = NO_EVENTS) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`KV capacity must be ≥ 1 block, got ${capacity}`);
    }
    this.capacity = capacity;
    this.prefixCaching = prefixCaching;
    this.events = events;
    const initial = Math.min(capacity, 1024);
    this.slotData = new Int32Array(initial * SLOT);
  }

  /** Blocks held by running requests. */
  get inUse(): number {
    return this.activeShared + this.privateBlocks;
  }

  /** Blocks held, cached ones included. */
  get occupied(): number {
    return this.inUse + this.inactiveCount;
  }

  get cached(): number {
    return this.inactiveCount;
  }

  /** Leading blocks of `ids` already on the rank (in use or cached): what a prefill can skip. */
  cachedPrefix(ids: readonly number[]): number {
    if (!this.prefixCaching) return 0;
    let n = 0;
    while (n < ids.length && this.slotOf.get(ids[n]!) !== NIL) n++;
    return n;
  }

  private fits(extraInUse: number, limit: number): boolean {
    const after = this.inUse + extraInUse;
    return after <= limit && after <= this.capacity;
  }

  /**
   * Takes the blocks of a prompt: shared `ids` (full blocks; with prefix caching, present ones are reused) and
   * `privateCount` more. Fails, changing nothing, when they do not fit under `limit` blocks in use.
   */
  acquire(ids: readonly number[], privateCount: number, limit = this.capacity): boolean {
    if (!this.prefixCaching) return this.acquirePrivate(ids.length + privateCount, limit);
    if (this.found.length < ids.length) this.found = new Int32Array(ids.length * 2);
    const found = this.found;
    let extra = privateCount;
    for (let i = 0; i < ids.length; i++) {
      const s = this.slotOf.get(ids[i]!);
      found[i] = s;
      if (s === NIL || this.slotData[s * SLOT + REFS] === 0) extra++;
    }
    if (!this.fits(extra, limit)) return false;
    // Reuse first, so making room for new blocks can never evict a block this prompt is about to reuse.
    const fresh: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const s = found[i]!;
      if (s === NIL) {
        fresh.push(ids[i]!);
        continue;
      }
      if (this.slotData[s * SLOT + REFS] === 0) {
        this.unlink(s);
        this.inactiveCount--;
        this.activeShared++;
      }
      this.slotData[s * SLOT + REFS]!++;
    }
    this.makeRoom(fresh.length + privateCount);
    for (const id of fresh) {
      const s = this.newSlot(id);
      this.slotData[s * SLOT + REFS] = 1;
      this.activeShared++;
    }
    this.privateBlocks += privateCount;
    if (fresh.length > 0) this.events.stored(fresh);
    return true;
  }

  /** Takes private blocks (a decode crossing a block boundary, or a prompt without prefix caching). */
  acquirePrivate(count: number, limit = this.capacity): boolean {
    if (!this.fits(count, limit)) return false;
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
      const s = this.slotOf.get(ids[i]!);
      if (--this.slotData[s * SLOT + REFS]! > 0) continue;
      this.activeShared--;
      this.inactiveCount++;
      this.append(s);
    }
  }

  /** Evicts least recently used cached blocks until `count` more blocks fit in the capacity. */
  private makeRoom(count: number): void {
    let excess = this.occupied + count - this.capacity;
    if (excess <= 0) return;
    const evicted: number[] = [];
    while (excess-- > 0 && this.head !== NIL) {
      const s = this.head;
      this.unlink(s);
      this.inactiveCount--;
      const id = this.slotData[s * SLOT + ID]!;
      this.slotOf.delete(id);
      this.freeSlots.push(s);
      evicted.push(id);
    }
    if (evicted.length > 0) this.events.removed(evicted);
  }

  private newSlot(id: number): number {
    let s = this.freeSlots.pop();
    if (s === undefined) {
      s = this.slots++;
      if ((s + 1) * SLOT > this.slotData.length) this.growSlots();
    }
    this.slotData[s * SLOT + ID] = id;
    this.slotOf.set(id, s);
    return s;
  }

  private growSlots(): void {
    this.slotData = resized(this.slotData, this.slotData.length * 2);
  }

  private append(s: number): void {
    this.slotData[s * SLOT + PREV] = this.tail;
    this.slotData[s * SLOT + NEXT] = NIL;
    if (this.tail !== NIL) this.slotData[this.tail * SLOT + NEXT] = s;
    else this.head = s;
    this.tail = s;
  }

  private unlink(s: number): void {
    const p = this.slotData[s * SLOT + PREV]!;
    const n = this.slotData[s * SLOT + NEXT]!;
    if (p !== NIL) this.slotData[p * SLOT + NEXT] = n;
    else this.head = n;
    if (n !== NIL) this.slotData[n * SLOT + PREV] = p;
    else this.tail = p;
  }
}
