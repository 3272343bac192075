import type { HashSeq } from "./hash-seq.ts";
import { HashTable } from "./hash-table.ts";
import type { KvIndex } from "./kv-index.ts";

export interface ApproxOptions {
  /** A block is forgotten this long after its latest routing (Dynamo `router_ttl_secs`, 120 s). */
  ttlMs?: number;
  /** Entries above which the index is pruned (Dynamo `router_max_tree_size`, 2^20). */
  maxEntries?: number;
  /** Pruning stops at this fraction of `maxEntries` (Dynamo `router_prune_target_ratio`, 0.8). */
  pruneTargetRatio?: number;
}

interface Expiry {
  at: number;
  position: number;
  target: number;
  lo: number;
  hi: number;
  stamp: number;
}

/** Earlier expiry first; among equal expiries the deepest block, so leaves go before the prefixes they extend. */
function before(a: Expiry, b: Expiry): boolean {
  return a.at < b.at || (a.at === b.at && a.position > b.position);
}

/**
 * Approximate mode, for engines that publish no KV events (Dynamo's `--no-kv-events`): the router records its own
 * decisions as if the chosen target had cached the request's blocks, and forgets them after a TTL or when the
 * index grows past a cap. Time is a parameter, so the same code runs on virtual and wall clocks.
 */
export class ApproxKvIndex {
  readonly index: KvIndex;
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly pruneTarget: number;
  private readonly heap: Expiry[] = [];
  /** (seq lo, hi, target) → stamp of the latest expiry entry; older heap entries for the key are stale. */
  private readonly latest = new HashTable(3, 4096);
  private stamp = 0;

  constructor(index: KvIndex, opts: ApproxOptions = {}) {
    this.index = index;
    this.ttlMs = opts.ttlMs ?? 120_000;
    this.maxEntries = opts.maxEntries ?? 2 ** 20;
    this.pruneTarget = Math.floor(this.maxEntries * (opts.pruneTargetRatio ?? 0.8));
  }

  /** Records that `target` was chosen for a request with these blocks at time `now` (ms). */
  record(target: number, seqs: HashSeq, locals: HashSeq, now: number): void {
    this.expire(now);
    // Stamps live in a table of int32 values: renumber the live ones long before they could overflow.
    if (this.stamp + (seqs.length >>> 1) >= 0x7ffffff0) this.renumber();
    this.index.storeSequence(target, seqs, locals);
    const at = now + this.ttlMs;
    for (let i = 0; i < seqs.length >>> 1; i++) {
      const entry = { at, position: i, target, lo: seqs[2 * i]!, hi: seqs[2 * i + 1]!, stamp: ++this.stamp };
      this.latest.set(entry.lo, entry.hi, target, entry.stamp);
      this.push(entry);
    }
    if (this.index.entries > this.maxEntries) this.prune(this.pruneTarget);
    if (this.heap.length > 4 * Math.max(this.latest.size, 1024)) this.compact();
  }

  /** Drops every block whose TTL has passed by `now`. */
  expire(now: number): void {
    while (this.heap.length > 0 && this.heap[0]!.at <= now) this.dropTop();
  }

  private prune(target: number): void {
    while (this.index.entries > target && this.heap.length > 0) this.dropTop();
  }

  private dropTop(): void {
    const e = this.pop();
    if (this.latest.get(e.lo, e.hi, e.target) !== e.stamp) return;
    this.latest.delete(e.lo, e.hi, e.target);
    this.index.removeSeq(e.target, Uint32Array.of(e.lo, e.hi));
  }

  /** Forgets a target's records (when its worker leaves). */
  forgetTarget(target: number): void {
    const doomed: number[] = [];
    this.latest.forEach((l, h, t) => {
      if (t === target) doomed.push(l, h);
    });
    for (let i = 0; i < doomed.length; i += 2) this.latest.delete(doomed[i]!, doomed[i + 1]!, target);
  }

  private renumber(): void {
    const live = this.heap.filter((e) => this.latest.get(e.lo, e.hi, e.target) === e.stamp);
    this.heap.length = 0;
    this.stamp = 0;
    for (const e of live) {
      e.stamp = ++this.stamp;
      this.latest.set(e.lo, e.hi, e.target, e.stamp);
      this.push(e);
    }
  }

  private compact(): void {
    const live = this.heap.filter((e) => this.latest.get(e.lo, e.hi, e.target) === e.stamp);
    this.heap.length = 0;
    for (const e of live) this.push(e);
  }

  private push(e: Expiry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Expiry {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
