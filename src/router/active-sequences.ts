import { type HashSeq, hashCount } from "../kv/hash-seq.ts";
import { HashTable } from "../kv/hash-table.ts";
import { PrefixIndex } from "../kv/prefix-index.ts";
import { resized } from "../kv/typed-arrays.ts";

interface ActiveRequest {
  target: number;
  /** Tree node of the prompt's last full block when its blocks are shared with other requests; −1 otherwise. */
  lastNode: number;
  /** Blocks counted without sharing (when prefix reuse is not assumed). */
  privateBlocks: number;
  prefillTokens: number;
  addedAt: number;
}

/**
 * What each target is busy with, as the router knows it (Dynamo's active-sequence "slot manager"): blocks of
 * in-flight requests (a prompt block shared by concurrent requests on one target counts once) and tokens still
 * waiting for prefill. Updated synchronously at routing time, on the first token and at stream end; entries older
 * than the expiry are dropped lazily, in case a completion is never reported.
 *
 * A target's active blocks form a tree of whole prompts, so instead of a reference count per block, a (block, target)
 * stays held while a prompt on the target ends there or the target holds one of its children. Adding a prompt
 * touches only the blocks new to the target; freeing it climbs only while blocks become unreferenced.
 */
export class ActiveSequences {
  readonly expiryMs: number;
  private readonly tree = new PrefixIndex(32);
  /** (node, target) → prompts on the target that end at the block. */
  private readonly ends = new HashTable(2, 1024);
  private readonly requests = new Map<string, ActiveRequest>();
  private blocks = new Float64Array(32);
  private prefill = new Float64Array(32);
  private counts = new Int32Array(32);
  private overlap = new Int32Array(32);

  constructor(expiryMs = 300_000) {
    this.expiryMs = expiryMs;
  }

  /** Makes room for target ids below `limit`. */
  fitTargets(limit: number): void {
    this.tree.ensureTargets(limit);
    const cap = this.tree.targetCapacity;
    if (this.blocks.length >= cap) return;
    this.blocks = resized(this.blocks, cap);
    this.prefill = resized(this.prefill, cap);
    this.counts = resized(this.counts, cap);
    this.overlap = new Int32Array(cap);
  }

  /** Active blocks on the target. */
  activeBlocks(t: number): number {
    return this.blocks[t] ?? 0;
  }

  /** Prompt tokens routed to the target that have not produced a first token yet. */
  prefillTokens(t: number): number {
    return this.prefill[t] ?? 0;
  }

  activeRequests(t: number): number {
    return this.counts[t] ?? 0;
  }

  /** Per target: how many leading blocks of `seqs` are already active there. A view reused by the next call. */
  activeOverlap(seqs: HashSeq): Int32Array {
    // Whole prompts are added and freed bottom-up, so what a target holds is prefix-closed.
    this.tree.match(seqs, this.overlap, true);
    return this.overlap;
  }

  has(requestId: string): boolean {
    return this.requests.has(requestId);
  }

  targetOf(requestId: string): number | undefined {
    return this.requests.get(requestId)?.target;
  }

  /**
   * Records a routed request. `seqs` (shared blocks) or `privateBlocks` (counted without sharing) give its KV
   * footprint; `prefillTokens` are its uncached prompt tokens.
   */
  add(
    requestId: string,
    target: number,
    seqs: HashSeq | null,
    privateBlocks: number,
    prefillTokens: number,
    now: number,
  ): void {
    this.expire(now);
    if (this.requests.has(requestId)) this.free(requestId);
    this.fitTargets(target + 1);
    const req: ActiveRequest = { target, lastNode: -1, privateBlocks, prefillTokens, addedAt: now };
    this.requests.set(requestId, req);
    this.counts[target]!++;
    this.prefill[target]! += prefillTokens;
    this.blocks[target]! += privateBlocks;
    const n = seqs === null ? 0 : hashCount(seqs);
    if (seqs === null || n === 0) return;
    const held = this.heldPrefix(seqs, target);
    let parent = held === 0 ? -1 : this.tree.find(seqs[2 * held - 2]!, seqs[2 * held - 1]!);
    for (let i = held; i < n; i++) {
      parent = this.tree.ensure(seqs[2 * i]!, seqs[2 * i + 1]!, parent, 0, 0);
      this.tree.addHolder(parent, target);
      this.blocks[target]!++;
    }
    this.ends.adjust(parent, target, 0, 1);
    req.lastNode = parent;
  }

  /** How many leading blocks of `seqs` the target holds: a binary search, since what it holds is prefix-closed. */
  private heldPrefix(seqs: HashSeq, target: number): number {
    let lo = 0;
    let hi = hashCount(seqs);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const node = this.tree.find(seqs[2 * mid]!, seqs[2 * mid + 1]!);
      if (node >= 0 && this.tree.holds(node, target)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The request produced its first token: its prompt no longer counts as pending prefill. */
  markPrefillCompleted(requestId: string): void {
    const req = this.requests.get(requestId);
    if (!req || req.prefillTokens === 0) return;
    this.prefill[req.target]! -= req.prefillTokens;
    req.prefillTokens = 0;
  }

  /** The request finished (or failed): release its blocks. Unknown ids are ignored. */
  free(requestId: string): void {
    const req = this.requests.get(requestId);
    if (!req) return;
    this.requests.delete(requestId);
    const t = req.target;
    this.counts[t]!--;
    this.prefill[t]! -= req.prefillTokens;
    this.blocks[t]! -= req.privateBlocks;
    let node = req.lastNode;
    if (node < 0 || this.ends.adjust(node, t, 0, -1) > 0) return;
    while (node >= 0 && this.tree.childrenHeldBy(node, t) === 0 && this.ends.get(node, t) < 0) {
      const parent = this.tree.parentOf(node);
      this.tree.removeHolder(node, t);
      this.blocks[t]!--;
      node = parent;
    }
  }

  /** Force-frees requests older than the expiry (insertion order is time order). */
  expire(now: number): void {
    for (const [id, req] of this.requests) {
      if (now - req.addedAt < this.expiryMs) break;
      this.free(id);
    }
  }

  /** Frees every request of a target (its worker left). */
  dropTarget(t: number): void {
    for (const [id, req] of [...this.requests]) if (req.target === t) this.free(id);
  }

  get size(): number {
    return this.requests.size;
  }
}
