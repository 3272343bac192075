import type { BlockDirectory } from "./block-directory.ts";
import type { HashSeq } from "./hash-seq.ts";
import { HashTable } from "./hash-table.ts";
import { resized } from "./typed-arrays.ts";

const FREED = -2;
/** `sole` values: no holder; several holders (bitset row). */
const NONE = -1;
const MANY = -2;

/*
 * Node layout. A node's fields sit together, in two records, so that creating, linking or freeing it touches a
 * cache line or two instead of one per field: the hashes (sequence and local, lo and hi words), and the links.
 */
const HASH_WORDS = 4;
const SEQ_LO = 0;
const SEQ_HI = 1;
const LOCAL_LO = 2;
const LOCAL_HI = 3;
const LINK_WORDS = 8;
const PARENT = 0;
/** Child lists, so a target's subtree can be walked when it loses a block. −1 ends a list. */
const FIRST_CHILD = 1;
const NEXT_SIBLING = 2;
const PREV_SIBLING = 3;
const HOLDERS = 4;
/** The single holder, or NONE, or MANY (then ROW names the node's bitset in `pool`). */
const SOLE = 5;
const ROW = 6;

/**
 * The block tree under the KV index. A node is one block, identified by its sequence hash (which already encodes
 * the whole prefix, so no per-node child maps are needed) and holding a set of the targets that hold the block.
 * Matching a request intersects these sets along its sequence hashes: word operations on ⌈targets/32⌉-word bitsets,
 * whatever the number of holders.
 *
 * Most blocks have one holder, so a node stores that holder inline and only blocks held by several targets get a
 * bitset row from a shared pool: memory follows the (block, target) entries, not blocks × targets.
 *
 * Nodes remember their parent and local hash (to dump the tree as events) and are freed when no target holds them
 * and no child node remains.
 *
 * With a `BlockDirectory`, a block it numbers lives at node = its number: no node-table insert or delete when it is
 * stored or freed, and a chain's nodes sit side by side. Other blocks get nodes past the directory's range.
 */
export class PrefixIndex {
  private words: number;
  private readonly nodeOf: HashTable;
  private readonly dir: BlockDirectory | undefined;
  private readonly dirSize: number;
  private capacity = 0;
  private nextNode: number;
  private readonly freeNodes: number[] = [];
  /** Per node: its hashes, and its links (see the layout constants). */
  private hashes = new Uint32Array(0);
  private links = new Int32Array(0);
  private pool = new Uint32Array(0);
  private rows = 0;
  private readonly freeRows: number[] = [];
  private alive = new Uint32Array(1);
  private live = new Int32Array(1);
  private liveCount = 0;
  private liveNodes = 0;
  /** Sequence hashes of the nodes a release is about to free. */
  private doomed = new Uint32Array(128);

  constructor(targetCapacity = 32, nodeCapacity = 1024, directory?: BlockDirectory) {
    this.words = Math.max(1, Math.ceil(targetCapacity / 32));
    this.dir = directory;
    // The directory may grow later; numbers past its size now are not ours to use as nodes.
    this.dirSize = directory?.size ?? 0;
    this.nextNode = this.dirSize;
    this.nodeOf = new HashTable(2, directory ? 16 : nodeCapacity);
    this.growNodes(directory ? 16 : nodeCapacity);
  }

  get targetCapacity(): number {
    return this.words * 32;
  }

  get nodeCount(): number {
    return this.liveNodes;
  }

  get bytes(): number {
    return this.hashes.byteLength + this.links.byteLength + this.pool.byteLength + this.nodeOf.bytes;
  }

  /** Widens the bitset rows so targets up to `n − 1` fit. */
  ensureTargets(n: number): void {
    const words = Math.ceil(n / 32);
    if (words <= this.words) return;
    const pool = new Uint32Array(Math.max(this.rows, 16) * words);
    for (let r = 0; r < this.rows; r++) {
      pool.set(this.pool.subarray(r * this.words, (r + 1) * this.words), r * words);
    }
    this.pool = pool;
    this.words = words;
  }

  private allocRow(): number {
    const r = this.freeRows.pop() ?? this.rows++;
    if ((r + 1) * this.words > this.pool.length) {
      const pool = new Uint32Array(Math.max(16, this.rows * 2) * this.words);
      pool.set(this.pool);
      this.pool = pool;
    }
    this.pool.fill(0, r * this.words, (r + 1) * this.words);
    return r;
  }

  /** Word `w` of the node's holder set. */
  private word(node: number, w: number): number {
    const sole = this.links[node * LINK_WORDS + SOLE]!;
    if (sole >= 0) return sole >>> 5 === w ? (1 << (sole & 31)) >>> 0 : 0;
    return sole === NONE ? 0 : this.pool[this.links[node * LINK_WORDS + ROW]! * this.words + w]!;
  }

  private growNodes(min: number): void {
    let cap = Math.max(16, this.capacity);
    while (cap < min) cap *= 2;
    if (min <= this.dirSize) cap = Math.min(cap, this.dirSize);
    if (cap <= this.capacity) return;
    const from = this.capacity;
    // Directory blocks' hashes are the directory's: only nodes past it keep their own.
    this.hashes = resized(this.hashes, Math.max(0, cap - this.dirSize) * HASH_WORDS);
    this.links = resized(this.links, cap * LINK_WORDS);
    for (let node = from; node < cap; node++) this.links[node * LINK_WORDS + PARENT] = FREED;
    this.capacity = cap;
  }

  /** Word `w` of the node's hashes (see the layout constants). */
  private hash(node: number, w: number): number {
    if (node >= this.dirSize) return this.hashes[(node - this.dirSize) * HASH_WORDS + w]!;
    const dir = this.dir!;
    if (w === SEQ_LO) return dir.seqLoOf(node);
    if (w === SEQ_HI) return dir.seqHiOf(node);
    return w === LOCAL_LO ? dir.localLoOf(node) : dir.localHiOf(node);
  }

  private isLive(node: number): boolean {
    return node < this.capacity && this.links[node * LINK_WORDS + PARENT] !== FREED;
  }

  /** The block's directory number (`known` when it is that block's), or −1 when the directory lacks it. */
  private directoryId(seqLo: number, seqHi: number, known: number): number {
    const dir = this.dir!;
    if (known >= 0 && known < this.dirSize && dir.seqLoOf(known) === seqLo && dir.seqHiOf(known) === seqHi)
      return known;
    const id = dir.find(seqLo, seqHi);
    return id < this.dirSize ? id : -1;
  }

  /** The node with this sequence hash, or −1. */
  find(seqLo: number, seqHi: number): number {
    if (this.dir !== undefined) {
      const id = this.directoryId(seqLo, seqHi, -1);
      if (id >= 0) return this.isLive(id) ? id : -1;
    }
    return this.nodeOf.get(seqLo, seqHi);
  }

  /**
   * Loads the node table's slots for `n` sequence hashes, (lo, hi) of hash k at `seqs[at + k·step]`, ahead of
   * `ensure` or `find` (see HashTable.prefetch).
   */
  prefetch(seqs: Uint32Array, at: number, step: number, n: number): void {
    this.nodeOf.prefetch(seqs, at, step, n);
  }

  /**
   * The node with this sequence hash, created under `parentNode` (−1 for the root) if new. `dirId`, when the
   * caller knows it, is the block's directory number (checked against the directory, so a wrong one costs a lookup).
   */
  ensure(
    seqLo: number,
    seqHi: number,
    parentNode: number,
    localLo: number,
    localHi: number,
    dirId = -1,
  ): number {
    if (this.dir !== undefined) {
      const id = this.directoryId(seqLo, seqHi, dirId);
      if (id >= 0) {
        // The directory's blocks all arrive sooner or later: make room for all of them at once, not by doubling.
        if (id >= this.capacity) this.growNodes(this.dirSize);
        if (this.links[id * LINK_WORDS + PARENT] === FREED)
          this.initNode(id, seqLo, seqHi, parentNode, localLo, localHi);
        return id;
      }
    }
    const node = this.freeNodes.length > 0 ? this.freeNodes[this.freeNodes.length - 1]! : this.nextNode;
    const found = this.nodeOf.getOrInsert(seqLo, seqHi, 0, node);
    if (found !== node) return found;
    if (this.freeNodes.length > 0) this.freeNodes.pop();
    else if (++this.nextNode > this.capacity) this.growNodes(this.nextNode);
    this.initNode(node, seqLo, seqHi, parentNode, localLo, localHi);
    return node;
  }

  private initNode(
    node: number,
    seqLo: number,
    seqHi: number,
    parentNode: number,
    localLo: number,
    localHi: number,
  ): void {
    if (node >= this.dirSize) {
      const h = (node - this.dirSize) * HASH_WORDS;
      this.hashes[h + SEQ_LO] = seqLo;
      this.hashes[h + SEQ_HI] = seqHi;
      this.hashes[h + LOCAL_LO] = localLo;
      this.hashes[h + LOCAL_HI] = localHi;
    }
    this.links[node * LINK_WORDS + PARENT] = parentNode;
    this.links[node * LINK_WORDS + FIRST_CHILD] = -1;
    this.links[node * LINK_WORDS + PREV_SIBLING] = -1;
    this.links[node * LINK_WORDS + NEXT_SIBLING] = -1;
    this.links[node * LINK_WORDS + HOLDERS] = 0;
    this.links[node * LINK_WORDS + SOLE] = NONE;
    if (parentNode >= 0) {
      const first = this.links[parentNode * LINK_WORDS + FIRST_CHILD]!;
      this.links[node * LINK_WORDS + NEXT_SIBLING] = first;
      if (first >= 0) this.links[first * LINK_WORDS + PREV_SIBLING] = node;
      this.links[parentNode * LINK_WORDS + FIRST_CHILD] = node;
    }
    this.liveNodes++;
  }

  /** Whether `node` is a live node with this sequence hash (a node id kept by a caller may have been reused). */
  hasSeq(node: number, seqLo: number, seqHi: number): boolean {
    return (
      node >= 0 && this.isLive(node) && this.hash(node, SEQ_LO) === seqLo && this.hash(node, SEQ_HI) === seqHi
    );
  }

  holds(node: number, target: number): boolean {
    const sole = this.links[node * LINK_WORDS + SOLE]!;
    if (sole !== MANY) return sole === target;
    return (
      ((this.pool[this.links[node * LINK_WORDS + ROW]! * this.words + (target >>> 5)]! >>> (target & 31)) &
        1) ===
      1
    );
  }

  /** Marks `target` as holding `node`; returns false when it already did. */
  addHolder(node: number, target: number): boolean {
    const sole = this.links[node * LINK_WORDS + SOLE]!;
    if (sole === target) return false;
    if (sole === NONE) {
      this.links[node * LINK_WORDS + SOLE] = target;
    } else {
      if (sole >= 0) {
        const r = this.allocRow();
        this.links[node * LINK_WORDS + ROW] = r;
        this.links[node * LINK_WORDS + SOLE] = MANY;
        this.pool[r * this.words + (sole >>> 5)]! |= 1 << (sole & 31);
      }
      const w = this.links[node * LINK_WORDS + ROW]! * this.words + (target >>> 5);
      const bit = 1 << (target & 31);
      if (this.pool[w]! & bit) return false;
      this.pool[w]! |= bit;
    }
    this.links[node * LINK_WORDS + HOLDERS]!++;
    return true;
  }

  /** Unmarks `target`; frees the node (and any ancestors left empty) once nobody holds it. */
  removeHolder(node: number, target: number): boolean {
    if (!this.holds(node, target)) return false;
    if (this.links[node * LINK_WORDS + SOLE] === target) {
      this.links[node * LINK_WORDS + SOLE] = NONE;
    } else {
      const base = this.links[node * LINK_WORDS + ROW]! * this.words;
      this.pool[base + (target >>> 5)]! &= ~(1 << (target & 31));
      if (this.links[node * LINK_WORDS + HOLDERS] === 2) {
        // Back to a single holder: find it and return the row to the pool.
        for (let w = 0; w < this.words; w++) {
          const bits = this.pool[base + w]!;
          if (bits !== 0) this.links[node * LINK_WORDS + SOLE] = w * 32 + 31 - Math.clz32(bits & -bits);
        }
        this.freeRows.push(this.links[node * LINK_WORDS + ROW]!);
      }
    }
    this.links[node * LINK_WORDS + HOLDERS]!--;
    this.release(node);
    return true;
  }

  private release(node: number): void {
    // Freeing a chain's last block frees its emptied ancestors too, each a node-table delete at a random slot:
    // find them first and load those slots together (see HashTable.prefetch).
    let doomed = 0;
    for (let n = node, child = -1; n >= this.dirSize; ) {
      const l = n * LINK_WORDS;
      if (this.links[l + HOLDERS] !== 0 || this.links[l + PARENT] === FREED) break;
      if (
        this.links[l + FIRST_CHILD] !== child ||
        (child >= 0 && this.links[child * LINK_WORDS + NEXT_SIBLING] !== -1)
      )
        break;
      if (this.doomed.length < 2 * doomed + 2) this.doomed = resized(this.doomed, 4 * doomed + 4);
      const h = (n - this.dirSize) * HASH_WORDS;
      this.doomed[2 * doomed] = this.hashes[h + SEQ_LO]!;
      this.doomed[2 * doomed + 1] = this.hashes[h + SEQ_HI]!;
      doomed++;
      child = n;
      n = this.links[l + PARENT]!;
    }
    if (doomed > 1) this.nodeOf.prefetch(this.doomed, 0, 2, doomed);
    while (
      node >= 0 &&
      this.links[node * LINK_WORDS + HOLDERS] === 0 &&
      this.links[node * LINK_WORDS + FIRST_CHILD] === -1 &&
      this.links[node * LINK_WORDS + PARENT] !== FREED
    ) {
      const up = this.links[node * LINK_WORDS + PARENT]!;
      if (node >= this.dirSize) {
        this.nodeOf.delete(this.hash(node, SEQ_LO), this.hash(node, SEQ_HI));
        this.freeNodes.push(node);
      }
      this.links[node * LINK_WORDS + PARENT] = FREED;
      this.liveNodes--;
      const prev = this.links[node * LINK_WORDS + PREV_SIBLING]!;
      const next = this.links[node * LINK_WORDS + NEXT_SIBLING]!;
      if (next >= 0) this.links[next * LINK_WORDS + PREV_SIBLING] = prev;
      if (prev >= 0) this.links[prev * LINK_WORDS + NEXT_SIBLING] = next;
      else if (up >= 0) this.links[up * LINK_WORDS + FIRST_CHILD] = next;
      node = up;
    }
  }

  /**
   * For every target t < targetCapacity, writes to scores[t] how many leading blocks of `seq` it holds (a block
   * counts only if the target also holds every block before it). Returns how many leading blocks any target holds.
   *
   * With `prefixClosed` the caller guarantees that every target holding a block holds its parent too. Then "all
   * targets still in their run hold block i" can only switch from true to false once along the prompt, and the
   * walk gallops and bisects to the blocks where targets drop out: O(drop points × log blocks) lookups instead of
   * one per block.
   */
  match(seq: HashSeq, scores: Int32Array, prefixClosed = false): number {
    const W = this.words;
    if (this.alive.length < W) {
      this.alive = new Uint32Array(W);
      this.live = new Int32Array(W);
    }
    this.alive.fill(0xffffffff, 0, W);
    scores.fill(0, 0, W * 32);
    for (let w = 0; w < W; w++) this.live[w] = w;
    this.liveCount = W;
    const n = seq.length >>> 1;
    let depth = 0;
    while (depth < n) {
      const node = this.find(seq[2 * depth]!, seq[2 * depth + 1]!);
      if (node < 0) break;
      if (!this.narrow(node, depth, scores)) break;
      depth++;
      if (prefixClosed) depth = this.gallop(seq, depth, n);
    }
    this.scoreRest(depth, scores);
    return depth;
  }

  private heldByAll(seq: HashSeq, i: number): boolean {
    const node = this.find(seq[2 * i]!, seq[2 * i + 1]!);
    return node >= 0 && this.allHold(node);
  }

  /** Do all targets still in their run hold the node? */
  private allHold(node: number): boolean {
    for (let j = 0; j < this.liveCount; j++) {
      const w = this.live[j]!;
      const a = this.alive[w]!;
      // `>>> 0`: bitwise results are signed, the stored words are not (bit 31 would never compare equal).
      if ((a & this.word(node, w)) >>> 0 !== a) return false;
    }
    return true;
  }

  /** Drops the targets that do not hold `node` (scoring them `depth`); false when none is left. */
  private narrow(node: number, depth: number, scores: Int32Array): boolean {
    let kept = 0;
    for (let j = 0; j < this.liveCount; j++) {
      const w = this.live[j]!;
      const a = this.alive[w]!;
      const still = a & this.word(node, w);
      let dropped = a & ~still;
      while (dropped !== 0) {
        const low = dropped & -dropped;
        scores[w * 32 + 31 - Math.clz32(low)] = depth;
        dropped ^= low;
      }
      this.alive[w] = still;
      if (still !== 0) this.live[kept++] = w;
    }
    this.liveCount = kept;
    return kept > 0;
  }

  /** From `from` (all live targets hold every block before it), the first block not held by all of them. */
  private gallop(seq: HashSeq, from: number, n: number): number {
    let good = from - 1;
    let step = 1;
    let bad = n;
    while (good + step < n) {
      if (!this.heldByAll(seq, good + step)) {
        bad = good + step;
        break;
      }
      good += step;
      step *= 2;
    }
    while (bad - good > 1) {
      const mid = (good + bad) >>> 1;
      if (this.heldByAll(seq, mid)) good = mid;
      else bad = mid;
    }
    return good + 1;
  }

  private scoreRest(depth: number, scores: Int32Array): void {
    for (let j = 0; j < this.liveCount; j++) {
      const w = this.live[j]!;
      let rest = this.alive[w]!;
      while (rest !== 0) {
        const low = rest & -rest;
        scores[w * 32 + 31 - Math.clz32(low)] = depth;
        rest ^= low;
      }
    }
  }

  /** Visits live nodes in order of their slots; parents may come after children. */
  forEachNode(fn: (node: number) => void): void {
    for (let node = 0; node < this.capacity; node++)
      if (this.links[node * LINK_WORDS + PARENT] !== FREED) fn(node);
  }

  /** Visits the targets holding the node, in ascending order. */
  forEachHolder(node: number, fn: (target: number) => void): void {
    const sole = this.links[node * LINK_WORDS + SOLE]!;
    if (sole !== MANY) {
      if (sole >= 0) fn(sole);
      return;
    }
    const base = this.links[node * LINK_WORDS + ROW]! * this.words;
    for (let w = 0; w < this.words; w++) {
      let bits = this.pool[base + w]!;
      while (bits !== 0) {
        const low = bits & -bits;
        fn(w * 32 + 31 - Math.clz32(low));
        bits ^= low;
      }
    }
  }

  /** How many of the node's children the target holds. */
  childrenHeldBy(node: number, target: number): number {
    let n = 0;
    for (
      let c = this.links[node * LINK_WORDS + FIRST_CHILD]!;
      c >= 0;
      c = this.links[c * LINK_WORDS + NEXT_SIBLING]!
    )
      if (this.holds(c, target)) n++;
    return n;
  }

  parentOf(node: number): number {
    return this.links[node * LINK_WORDS + PARENT]!;
  }

  /** Low and high halves of the node's sequence hash (separate, so hot paths allocate no tuple). */
  seqLoOf(node: number): number {
    return this.hash(node, SEQ_LO);
  }

  seqHiOf(node: number): number {
    return this.hash(node, SEQ_HI);
  }

  seqOf(node: number): [lo: number, hi: number] {
    return [this.hash(node, SEQ_LO), this.hash(node, SEQ_HI)];
  }

  localOf(node: number): [lo: number, hi: number] {
    return [this.hash(node, LOCAL_LO), this.hash(node, LOCAL_HI)];
  }

  holderCount(node: number): number {
    return this.links[node * LINK_WORDS + HOLDERS]!;
  }
}
