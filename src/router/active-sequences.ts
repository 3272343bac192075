import { type HashSeq, hashCount } from "../kv/hash-seq.ts";
import { HashTable } from "../kv/hash-table.ts";
import { PrefixIndex } from "../kv/prefix-index.ts";

interface ActiveRequest {
  target: number;
  /** Sequence hashes of the prompt's full blocks, shared with other requests on the target; null when untracked. */
  seqs: HashSeq | null;
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
 */
export class ActiveSequences {
  readonly expiryMs: number;
  private readonly tree = new PrefixIndex(32);
  /** (seq lo, hi, target) → requests on the target holding the block. */
  private readonly refs = new HashTable(3, 4096);
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
    const widen = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.blocks = widen(this.blocks, (n) => new Float64Array(n));
    this.prefill = widen(this.prefill, (n) => new Float64Array(n));
    this.counts = widen(this.counts, (n) => new Int32Array(n));
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
    this.tree.match(seqs, this.overlap);
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
    const req: ActiveRequest = { target, seqs, privateBlocks, prefillTokens, addedAt: now };
    this.requests.set(requestId, req);
    this.counts[target]!++;
    this.prefill[target]! += prefillTokens;
    this.blocks[target]! += privateBlocks;
    if (seqs === null) return;
    let parent = -1;
    for (let i = 0; i < hashCount(seqs); i++) {
      const lo = seqs[2 * i]!;
      const hi = seqs[2 * i + 1]!;
      const node = this.tree.ensure(lo, hi, parent, 0, 0);
      const rc = this.refs.get(lo, hi, target);
      if (rc < 0) {
        this.refs.set(lo, hi, target, 1);
        this.tree.addHolder(node, target);
        this.blocks[target]!++;
      } else {
        this.refs.set(lo, hi, target, rc + 1);
      }
      parent = node;
    }
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
    // Deepest first, so a freed chain releases its tree nodes bottom-up.
    for (let i = hashCount(req.seqs) - 1; i >= 0; i--) {
      const lo = req.seqs[2 * i]!;
      const hi = req.seqs[2 * i + 1]!;
      const rc = this.refs.get(lo, hi, t);
      if (rc > 1) {
        this.refs.set(lo, hi, t, rc - 1);
        continue;
      }
      this.refs.delete(lo, hi, t);
      this.tree.removeHolder(this.tree.find(lo, hi), t);
      this.blocks[t]!--;
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
