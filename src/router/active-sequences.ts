import { type HashSeq, hashCount } from "../kv/hash-seq.ts";
import { resized } from "../kv/typed-arrays.ts";

interface ActiveRequest {
  target: number;
  /** Sequence hashes of the prompt's full blocks when they are shared with other requests (kept, not copied). */
  seqs: HashSeq | null;
  /** Position in its target's list of requests with shared blocks. */
  slot: number;
  /** Blocks counted without sharing (when prefix reuse is not assumed). */
  privateBlocks: number;
  prefillTokens: number;
  addedAt: number;
}

/**
 * How many leading blocks two prompts share. A sequence hash fixes every block before it, so the prompts agree on
 * a prefix and differ after it: a binary search for its end.
 */
function commonPrefix(a: HashSeq, b: HashSeq): number {
  let lo = 0;
  let hi = Math.min(hashCount(a), hashCount(b));
  if (hi === 0 || a[0] !== b[0] || a[1] !== b[1]) return 0;
  lo = 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[2 * mid] === b[2 * mid] && a[2 * mid + 1] === b[2 * mid + 1]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * What each target is busy with, as the router knows it (Dynamo's active-sequence "slot manager"): blocks of
 * in-flight requests (a prompt block shared by concurrent requests on one target counts once) and tokens still
 * waiting for prefill. Updated synchronously at routing time, on the first token and at stream end; entries older
 * than the expiry are dropped lazily, in case a completion is never reported.
 *
 * A target's active prompts form a tree whose blocks are their union. A prompt adds to it the blocks past its
 * longest common prefix with the target's other prompts, and takes those away again when it ends, so keeping the
 * count exact costs a comparison of the prompt with each other prompt on its target (one hash pair for most, a
 * binary search for those sharing its first block), and nothing per block.
 */
export class ActiveSequences {
  readonly expiryMs: number;
  private readonly requests = new Map<string, ActiveRequest>();
  /** Per target: its requests with shared blocks. */
  private shared: ActiveRequest[][] = [];
  private blocks = new Float64Array(32);
  private prefill = new Float64Array(32);
  private counts = new Int32Array(32);
  private overlap = new Int32Array(32);

  constructor(expiryMs = 300_000) {
    this.expiryMs = expiryMs;
  }

  /** Makes room for target ids below `limit`. */
  fitTargets(limit: number): void {
    while (this.shared.length < limit) this.shared.push([]);
    if (this.blocks.length >= limit) return;
    const cap = Math.ceil(limit / 32) * 32;
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
    this.overlap.fill(0);
    for (let t = 0; t < this.shared.length; t++) this.overlap[t] = this.longestPrefix(seqs, this.shared[t]!);
    return this.overlap;
  }

  /** The longest prefix of `seqs` that one of `others` shares. */
  private longestPrefix(seqs: HashSeq, others: readonly ActiveRequest[]): number {
    const n = hashCount(seqs);
    let best = 0;
    for (let i = 0; i < others.length && best < n; i++) {
      const common = commonPrefix(seqs, others[i]!.seqs!);
      if (common > best) best = common;
    }
    return best;
  }

  has(requestId: string): boolean {
    return this.requests.has(requestId);
  }

  targetOf(requestId: string): number | undefined {
    return this.requests.get(requestId)?.target;
  }

  /**
   * Records a routed request. `seqs` (shared blocks, kept by reference) or `privateBlocks` (counted without
   * sharing) give its KV footprint; `prefillTokens` are its uncached prompt tokens.
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
    const shares = seqs !== null && hashCount(seqs) > 0;
    const req: ActiveRequest = {
      target,
      seqs: shares ? seqs : null,
      slot: -1,
      privateBlocks,
      prefillTokens,
      addedAt: now,
    };
    this.requests.set(requestId, req);
    this.counts[target]!++;
    this.prefill[target]! += prefillTokens;
    this.blocks[target]! += privateBlocks;
    if (!shares) return;
    const list = this.shared[target]!;
    this.blocks[target]! += hashCount(seqs) - this.longestPrefix(seqs, list);
    req.slot = list.length;
    list.push(req);
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
    if (req.seqs === null) return;
    const list = this.shared[t]!;
    const last = list.pop()!;
    if (last !== req) {
      list[req.slot] = last;
      last.slot = req.slot;
    }
    this.blocks[t]! -= hashCount(req.seqs) - this.longestPrefix(req.seqs, list);
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
