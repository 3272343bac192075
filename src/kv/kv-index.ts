import type { BlockDirectory } from "./block-directory.ts";
import type { BlockHasher } from "./block-hash.ts";
import type { BlockHash, RouterEvent, StoredBlock } from "./events.ts";
import { type HashSeq, hashCount } from "./hash-seq.ts";
import { HashTable } from "./hash-table.ts";
import { PrefixIndex } from "./prefix-index.ts";
import { TargetRegistry } from "./targets.ts";
import { resized } from "./typed-arrays.ts";

/** Problems found in events. They are counted and the offending part skipped; they never throw out of the index. */
export interface IndexErrors {
  /** A stored batch named a parent block its target does not hold; the batch was dropped. */
  parentNotFound: number;
  /** A removal named a block its target does not hold. */
  blockNotFound: number;
}

export interface Matches {
  /** Per target id: leading blocks of the request it holds. A view reused by the next call. */
  scores: Int32Array;
  /** Per target id: blocks it holds in the index. */
  treeSizes: Int32Array;
  /** Leading blocks held by at least one target. */
  depth: number;
}

// Splitting a BigInt through a shared 64-bit slot allocates nothing, unlike shifting and masking.
const slot64 = new BigUint64Array(1);
const slot32 = new Uint32Array(slot64.buffer);
const lo = (h: BlockHash) => {
  slot64[0] = h;
  return slot32[0]!;
};
const hi = (h: BlockHash) => {
  slot64[0] = h;
  return slot32[1]!;
};
const u64 = (l: number, h: number): BlockHash => (BigInt(h) << 32n) | BigInt(l);

/**
 * The router's view of which blocks each target caches, fed by KV events (Dynamo's radix-tree indexer). A block is
 * identified by its sequence hash, chained from the `tokensHash` of every block before it, so matching a request
 * needs nothing but the request's own sequence hashes. The engines' own hashes (`blockHash`) only serve to find the
 * parent of a stored batch and the blocks of a removal, per target.
 */
export class KvIndex {
  readonly targets: TargetRegistry;
  readonly errors: IndexErrors = { parentNotFound: 0, blockNotFound: 0 };
  private readonly hasher: BlockHasher;
  private readonly tree: PrefixIndex;
  /** (engine hash lo, hi, target) → node; absent when engine hashes are the sequence hashes (`seqAddressed`). */
  private readonly byEngineHash: HashTable | undefined;
  private held = 0;
  /** (node, target) → extra engine hashes naming a block the target already holds. */
  private readonly aliases = new HashTable(2, 16);
  private treeSizes = new Int32Array(32);
  /**
   * Blocks held without their parent (an engine evicted a middle block), counted per target and in total. While
   * there are none, matching may assume prefix-closed holdings and bisect instead of walking every block.
   */
  private orphans = new Int32Array(32);
  private totalOrphans = 0;
  private scores = new Int32Array(32);
  private readonly chained = new Uint32Array(2);
  /**
   * Per block of the event being applied, as (lo, hi) words: a stored block's sequence, local and engine hashes,
   * or a removed block's engine hash.
   */
  private batch = new Uint32Array(6 * 64);

  /**
   * `expectedEntries` presizes the tables (e.g. the engines' KV capacity in blocks × targets), sparing the
   * rehashing while the index fills; it is not a limit.
   */
  /**
   * With `seqAddressed`, every event names blocks by their sequence hash (a simulated engine sharing the router's
   * hashing, or the router's own records): the tree's node table then finds them, and the per-target table of
   * engine hashes, half the index's work, is not kept. A `directory` numbers the blocks known up front (see
   * PrefixIndex).
   */
  constructor(
    hasher: BlockHasher,
    targets = new TargetRegistry(),
    expectedEntries = 4096,
    seqAddressed = false,
    directory?: BlockDirectory,
  ) {
    this.hasher = hasher;
    this.targets = targets;
    this.tree = new PrefixIndex(32, expectedEntries, directory);
    this.byEngineHash = seqAddressed ? undefined : new HashTable(3, expectedEntries);
  }

  /** The node the target holds under this engine hash, or −1. */
  private lookup(t: number, extLo: number, extHi: number): number {
    if (this.byEngineHash) return this.byEngineHash.get(extLo, extHi, t);
    const node = this.tree.find(extLo, extHi);
    return node >= 0 && this.tree.holds(node, t) ? node : -1;
  }

  /** Records that the engine hash names `node` for the target; returns the node it named before, or −1. */
  private bind(t: number, extLo: number, extHi: number, node: number): number {
    if (!this.byEngineHash) return this.tree.holds(node, t) ? node : -1;
    const before = this.byEngineHash.size;
    const previous = this.byEngineHash.getOrInsert(extLo, extHi, t, node);
    if (this.byEngineHash.size !== before) return -1;
    if (previous !== node) this.byEngineHash.set(extLo, extHi, t, node);
    return previous;
  }

  /** Forgets the engine hash; returns the node it named, or −1. */
  private unbind(t: number, extLo: number, extHi: number): number {
    return this.byEngineHash ? this.byEngineHash.delete(extLo, extHi, t) : this.lookup(t, extLo, extHi);
  }

  /** Every (target, engine hash, node) binding. */
  private forEachBinding(fn: (t: number, extLo: number, extHi: number, node: number) => void): void {
    if (this.byEngineHash) {
      this.byEngineHash.forEach((eLo, eHi, t, node) => {
        fn(t, eLo, eHi, node);
      });
      return;
    }
    this.tree.forEachNode((node) => {
      this.tree.forEachHolder(node, (t) => fn(t, this.tree.seqLoOf(node), this.tree.seqHiOf(node), node));
    });
  }

  /** (block, target) entries held. */
  get entries(): number {
    return this.held;
  }

  get nodes(): number {
    return this.tree.nodeCount;
  }

  /** Bytes held by the index's arrays and tables. */
  get bytes(): number {
    return (
      this.tree.bytes + (this.byEngineHash?.bytes ?? 0) + this.treeSizes.byteLength + this.scores.byteLength
    );
  }

  treeSize(target: number): number {
    return this.treeSizes[target] ?? 0;
  }

  private fitTargets(limit: number): void {
    this.tree.ensureTargets(limit);
    const cap = this.tree.targetCapacity;
    if (this.treeSizes.length < cap) {
      this.treeSizes = resized(this.treeSizes, cap);
      this.orphans = resized(this.orphans, cap);
      this.scores = new Int32Array(cap);
    }
  }

  /** Registers a target ahead of its events (routers do this when a worker joins). */
  addTarget(workerId: string, dpRank: number): number {
    const id = this.targets.add({ workerId, dpRank });
    this.fitTargets(this.targets.idLimit);
    return id;
  }

  /** Applies one event; returns false when (part of) it was skipped, as recorded in `errors`. */
  apply(ev: RouterEvent): boolean {
    const t = this.addTarget(ev.workerId, ev.dpRank);
    const d = ev.data;
    switch (d.type) {
      case "stored":
        return this.store(t, d.parentHash, d.blocks);
      case "removed":
        return this.remove(t, d.blockHashes);
      case "cleared":
        this.clear(t);
        return true;
    }
  }

  private holdBlock(t: number, node: number, extLo: number, extHi: number): void {
    const previous = this.bind(t, extLo, extHi, node);
    if (previous === node) return;
    // Hold the new block before letting go of anything: dropping `previous` may free empty ancestors, and `node`
    // could be one of them.
    if (this.tree.addHolder(node, t)) {
      this.treeSizes[t]!++;
      this.held++;
      if (this.isOrphan(t, node)) this.countOrphans(t, 1);
      // Children the target kept while this block was missing have their parent back.
      if (this.orphans[t]! > 0) {
        this.countOrphans(t, -this.tree.childrenHeldBy(node, t));
      }
    } else {
      // The same block under a second engine hash (e.g. another cache salt): one holder, two names for it.
      this.aliases.adjust(node, t, 0, 1);
    }
    // The engine reused one of its hashes for different content: the old block is gone.
    if (previous >= 0) this.dropEntry(t, previous);
  }

  private dropEntry(t: number, node: number): void {
    if (!this.tree.holds(node, t)) return;
    if (this.aliases.size > 0 && this.aliases.get(node, t) > 0) {
      this.aliases.adjust(node, t, 0, -1);
      return;
    }
    if (this.isOrphan(t, node)) this.countOrphans(t, -1);
    const children = this.tree.childrenHeldBy(node, t);
    if (children > 0) this.countOrphans(t, children);
    this.tree.removeHolder(node, t);
    this.treeSizes[t]!--;
    this.held--;
  }

  private isOrphan(t: number, node: number): boolean {
    const p = this.tree.parentOf(node);
    return p >= 0 && !this.tree.holds(p, t);
  }

  private countOrphans(t: number, delta: number): void {
    this.orphans[t]! += delta;
    this.totalOrphans += delta;
  }

  /** A stored batch: blocks chained under `parentHash` (an engine hash this target holds) or the root. */
  store(t: number, parentHash: BlockHash | null, blocks: readonly StoredBlock[]): boolean {
    let parent = -1;
    if (parentHash !== null) {
      parent = this.lookup(t, lo(parentHash), hi(parentHash));
      if (parent < 0) {
        this.errors.parentNotFound++;
        return false;
      }
    }
    const n = blocks.length;
    if (this.batch.length < 6 * n) this.batch = new Uint32Array(12 * n);
    const batch = this.batch;
    const chained = this.chained;
    // A block's node has the sequence hash chained from its parent's, so the whole batch's hashes are known before
    // any node is: work them out first, then load every table slot the batch will probe (see HashTable.prefetch).
    for (let i = 0; i < n; i++) {
      const b = blocks[i]!;
      slot64[0] = b.tokensHash;
      const lLo = slot32[0]!;
      const lHi = slot32[1]!;
      if (i === 0 && parent < 0) {
        chained[0] = lLo;
        chained[1] = lHi;
      } else {
        const pLo = i === 0 ? this.tree.seqLoOf(parent) : batch[6 * i - 6]!;
        const pHi = i === 0 ? this.tree.seqHiOf(parent) : batch[6 * i - 5]!;
        this.hasher.chainInto(pLo, pHi, lLo, lHi, chained, 0);
      }
      slot64[0] = b.blockHash;
      const o = 6 * i;
      batch[o] = chained[0]!;
      batch[o + 1] = chained[1]!;
      batch[o + 2] = lLo;
      batch[o + 3] = lHi;
      batch[o + 4] = slot32[0]!;
      batch[o + 5] = slot32[1]!;
    }
    this.tree.prefetch(batch, 0, 6, n);
    this.byEngineHash?.prefetch(batch, 4, 6, n, t);
    for (let o = 0; o < 6 * n; o += 6) {
      const node = this.tree.ensure(batch[o]!, batch[o + 1]!, parent, batch[o + 2]!, batch[o + 3]!);
      this.holdBlock(t, node, batch[o + 4]!, batch[o + 5]!);
      parent = node;
    }
    return true;
  }

  /**
   * Stores blocks whose sequence hashes the caller already knows (its own routing decisions, or a simulated engine
   * sharing the router's hashing): blocks `from…` of a request, the engine hash of each being its sequence hash.
   * Returns false (and stores nothing) when block `from − 1` is not held by the target.
   */
  storeSequence(t: number, seqs: HashSeq, locals: HashSeq, from = 0): boolean {
    let parent = -1;
    if (from > 0) {
      parent = this.lookup(t, seqs[2 * from - 2]!, seqs[2 * from - 1]!);
      if (parent < 0) {
        this.errors.parentNotFound++;
        return false;
      }
    }
    for (let i = from; i < hashCount(seqs); i++) {
      const sLo = seqs[2 * i]!;
      const sHi = seqs[2 * i + 1]!;
      const node = this.tree.ensure(sLo, sHi, parent, locals[2 * i]!, locals[2 * i + 1]!);
      this.holdBlock(t, node, sLo, sHi);
      parent = node;
    }
    return true;
  }

  /** The node the target holds under this engine hash, or −1. */
  heldNode(t: number, extLo: number, extHi: number): number {
    return this.lookup(t, extLo, extHi);
  }

  /**
   * Stores one block whose engine hash is its sequence hash (a simulated engine sharing the router's hashing) under
   * `parentNode`, a node the target holds (from `heldNode`, or the previous call for the next block of a batch), or
   * under the root for −1. `nodeHint`, a node an earlier call returned for the block or the block's number in the
   * index's directory, spares the hash-table lookup while it still is that block. Returns the block's node.
   */
  storeBlockUnder(
    t: number,
    parentNode: number,
    seqLo: number,
    seqHi: number,
    localLo: number,
    localHi: number,
    nodeHint = -1,
  ): number {
    const node = this.tree.hasSeq(nodeHint, seqLo, seqHi)
      ? nodeHint
      : this.tree.ensure(seqLo, seqHi, parentNode, localLo, localHi, nodeHint);
    this.holdBlock(t, node, seqLo, seqHi);
    return node;
  }

  /**
   * Removes one block stored with `storeBlockUnder`, found through the node that call returned when the node still
   * is that block (it may since have been freed and reused), else by its sequence hash. Returns false, counting it
   * in `errors.blockNotFound`, when the target does not hold it.
   */
  removeBlockAt(t: number, nodeHint: number, seqLo: number, seqHi: number): boolean {
    const node =
      !this.byEngineHash && this.tree.hasSeq(nodeHint, seqLo, seqHi) && this.tree.holds(nodeHint, t)
        ? nodeHint
        : this.unbind(t, seqLo, seqHi);
    if (node < 0) {
      this.errors.blockNotFound++;
      return false;
    }
    this.dropEntry(t, node);
    return true;
  }

  /** Removes blocks by engine hash; unknown ones are counted in `errors.blockNotFound`. */
  remove(t: number, blockHashes: readonly BlockHash[]): boolean {
    const n = blockHashes.length;
    if (this.batch.length < 2 * n) this.batch = new Uint32Array(4 * n);
    const batch = this.batch;
    for (let i = 0; i < n; i++) {
      slot64[0] = blockHashes[i]!;
      batch[2 * i] = slot32[0]!;
      batch[2 * i + 1] = slot32[1]!;
    }
    this.byEngineHash?.prefetch(batch, 0, 2, n, t);
    return this.removeSeq(t, batch.subarray(0, 2 * n));
  }

  removeSeq(t: number, blockHashes: HashSeq): boolean {
    let ok = true;
    for (let i = 0; i < hashCount(blockHashes); i++) {
      const node = this.unbind(t, blockHashes[2 * i]!, blockHashes[2 * i + 1]!);
      if (node < 0) {
        this.errors.blockNotFound++;
        ok = false;
        continue;
      }
      this.dropEntry(t, node);
    }
    return ok;
  }

  /** Forgets every block of a target (an `AllBlocksCleared` event). */
  clear(t: number): void {
    const doomed: number[] = [];
    this.forEachBinding((target, eLo, eHi) => {
      if (target === t) doomed.push(eLo, eHi);
    });
    this.removeSeq(t, Uint32Array.from(doomed));
  }

  /** Forgets a worker (every dp rank) and unregisters its targets. */
  removeWorker(workerId: string): void {
    for (const t of this.targets.idsOfWorker(workerId)) {
      this.clear(t);
      this.targets.remove(t);
    }
  }

  /** Per-target leading overlap of a request given by its sequence hashes. */
  findMatches(seqs: HashSeq): Matches {
    const depth = this.tree.match(seqs, this.scores, this.totalOrphans === 0);
    return { scores: this.scores, treeSizes: this.treeSizes, depth };
  }

  /**
   * The whole index as events that rebuild it when applied to an empty index: per target, root-first stored events
   * of single blocks. A block whose parent the target does not hold (its engine evicted a middle block) is restored
   * through its nearest held ancestor plus placeholder blocks that a removal event then drops again.
   */
  dumpEvents(): RouterEvent[] {
    const events: RouterEvent[] = [];
    const held = new Map<number, Map<number, BlockHash>>();
    this.forEachBinding((t, eLo, eHi, node) => {
      const m = held.get(t) ?? new Map<number, BlockHash>();
      held.set(t, m);
      m.set(node, u64(eLo, eHi));
    });
    const depthOf = new Map<number, number>();
    const depth = (node: number): number => {
      let d = depthOf.get(node);
      if (d === undefined) {
        const p = this.tree.parentOf(node);
        d = p < 0 ? 0 : depth(p) + 1;
        depthOf.set(node, d);
      }
      return d;
    };
    let eventId = 0n;
    for (const t of [...held.keys()].sort((a, b) => a - b)) {
      const { workerId, dpRank } = this.targets.get(t);
      const mine = held.get(t)!;
      const emit = (data: RouterEvent["data"]) => events.push({ workerId, dpRank, eventId: eventId++, data });
      const nodes = [...mine.keys()].sort((a, b) => depth(a) - depth(b) || a - b);
      for (const node of nodes) {
        const placeholders: StoredBlock[] = [];
        let up = this.tree.parentOf(node);
        while (up >= 0 && !mine.has(up)) {
          const [sLo, sHi] = this.tree.seqOf(up);
          const [lLo, lHi] = this.tree.localOf(up);
          placeholders.unshift({ blockHash: u64(sLo, sHi), tokensHash: u64(lLo, lHi) });
          up = this.tree.parentOf(up);
        }
        const [lLo, lHi] = this.tree.localOf(node);
        emit({
          type: "stored",
          parentHash: up < 0 ? null : mine.get(up)!,
          blocks: [...placeholders, { blockHash: mine.get(node)!, tokensHash: u64(lLo, lHi) }],
        });
        if (placeholders.length > 0)
          emit({ type: "removed", blockHashes: placeholders.map((b) => b.blockHash) });
      }
    }
    return events;
  }
}
