import type { HashSeq } from "./hash-seq.ts";
import { HashTable } from "./hash-table.ts";
import { resized } from "./typed-arrays.ts";

const FREED = -2;
/** `sole` values: no holder; several holders (bitset row). */
const NONE = -1;
const MANY = -2;

/**
 * The block tree shared by the KV index and the active-load tracker. A node is one block, identified by its
 * sequence hash (which already encodes the whole prefix, so no per-node child maps are needed) and holding a
 * set of the targets that hold the block. Matching a request intersects these sets along its sequence hashes:
 * word operations on ⌈targets/32⌉-word bitsets, whatever the number of holders.
 *
 * Most blocks have one holder, so a node stores that holder inline and only blocks held by several targets get a
 * bitset row from a shared pool: memory follows the (block, target) entries, not blocks × targets.
 *
 * Nodes remember their parent and local hash (to dump the tree as events) and are freed when no target holds them
 * and no child node remains.
 */
export class PrefixIndex {
  private words: number;
  private readonly nodeOf: HashTable;
  private capacity = 0;
  private nextNode = 0;
  private readonly freeNodes: number[] = [];
  private seqLo = new Uint32Array(0);
  private seqHi = new Uint32Array(0);
  private localLo = new Uint32Array(0);
  private localHi = new Uint32Array(0);
  private parent = new Int32Array(0);
  /** Child lists, so a target's subtree can be walked when it loses a block. −1 ends a list. */
  private firstChild = new Int32Array(0);
  private nextSibling = new Int32Array(0);
  private prevSibling = new Int32Array(0);
  private holders = new Int32Array(0);
  /** The single holder, or NONE, or MANY (then `row` names the node's bitset in `pool`). */
  private sole = new Int32Array(0);
  private row = new Int32Array(0);
  private pool = new Uint32Array(0);
  private rows = 0;
  private readonly freeRows: number[] = [];
  private alive = new Uint32Array(1);
  private live = new Int32Array(1);
  private liveCount = 0;
  private liveNodes = 0;

  constructor(targetCapacity = 32, nodeCapacity = 1024) {
    this.words = Math.max(1, Math.ceil(targetCapacity / 32));
    this.nodeOf = new HashTable(2, nodeCapacity);
    this.growNodes(nodeCapacity);
  }

  get targetCapacity(): number {
    return this.words * 32;
  }

  get nodeCount(): number {
    return this.liveNodes;
  }

  get bytes(): number {
    return this.capacity * 4 * 11 + this.pool.byteLength + this.nodeOf.bytes;
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
    const sole = this.sole[node]!;
    if (sole >= 0) return sole >>> 5 === w ? (1 << (sole & 31)) >>> 0 : 0;
    return sole === NONE ? 0 : this.pool[this.row[node]! * this.words + w]!;
  }

  private growNodes(min: number): void {
    let cap = Math.max(16, this.capacity);
    while (cap < min) cap *= 2;
    if (cap === this.capacity) return;
    this.seqLo = resized(this.seqLo, cap);
    this.seqHi = resized(this.seqHi, cap);
    this.localLo = resized(this.localLo, cap);
    this.localHi = resized(this.localHi, cap);
    this.parent = resized(this.parent, cap);
    this.firstChild = resized(this.firstChild, cap);
    this.nextSibling = resized(this.nextSibling, cap);
    this.prevSibling = resized(this.prevSibling, cap);
    this.holders = resized(this.holders, cap);
    this.sole = resized(this.sole, cap);
    this.row = resized(this.row, cap);
    this.capacity = cap;
  }

  /** The node with this sequence hash, or −1. */
  find(seqLo: number, seqHi: number): number {
    return this.nodeOf.get(seqLo, seqHi);
  }

  /** The node with this sequence hash, created under `parentNode` (−1 for the root) if new. */
  ensure(seqLo: number, seqHi: number, parentNode: number, localLo: number, localHi: number): number {
    let node = this.freeNodes.length > 0 ? this.freeNodes[this.freeNodes.length - 1]! : this.nextNode;
    const found = this.nodeOf.getOrInsert(seqLo, seqHi, 0, node);
    if (found !== node) return found;
    if (this.freeNodes.length > 0) this.freeNodes.pop();
    else if (++this.nextNode > this.capacity) this.growNodes(this.nextNode);
    node = found;
    this.seqLo[node] = seqLo;
    this.seqHi[node] = seqHi;
    this.localLo[node] = localLo;
    this.localHi[node] = localHi;
    this.parent[node] = parentNode;
    this.firstChild[node] = -1;
    this.prevSibling[node] = -1;
    this.nextSibling[node] = -1;
    this.holders[node] = 0;
    this.sole[node] = NONE;
    if (parentNode >= 0) {
      const first = this.firstChild[parentNode]!;
      this.nextSibling[node] = first;
      if (first >= 0) this.prevSibling[first] = node;
      this.firstChild[parentNode] = node;
    }
    this.liveNodes++;
    return node;
  }

  holds(node: number, target: number): boolean {
    const sole = this.sole[node]!;
    if (sole !== MANY) return sole === target;
    return ((this.pool[this.row[node]! * this.words + (target >>> 5)]! >>> (target & 31)) & 1) === 1;
  }

  /** Marks `target` as holding `node`; returns false when it already did. */
  addHolder(node: number, target: number): boolean {
    const sole = this.sole[node]!;
    if (sole === target) return false;
    if (sole === NONE) {
      this.sole[node] = target;
    } else {
      if (sole >= 0) {
        const r = this.allocRow();
        this.row[node] = r;
        this.sole[node] = MANY;
        this.pool[r * this.words + (sole >>> 5)]! |= 1 << (sole & 31);
      }
      const w = this.row[node]! * this.words + (target >>> 5);
      const bit = 1 << (target & 31);
      if (this.pool[w]! & bit) return false;
      this.pool[w]! |= bit;
    }
    this.holders[node]!++;
    return true;
  }

  /** Unmarks `target`; frees the node (and any ancestors left empty) once nobody holds it. */
  removeHolder(node: number, target: number): boolean {
    if (!this.holds(node, target)) return false;
    if (this.sole[node] === target) {
      this.sole[node] = NONE;
    } else {
      const base = this.row[node]! * this.words;
      this.pool[base + (target >>> 5)]! &= ~(1 << (target & 31));
      if (this.holders[node] === 2) {
        // Back to a single holder: find it and return the row to the pool.
        for (let w = 0; w < this.words; w++) {
          const bits = this.pool[base + w]!;
          if (bits !== 0) this.sole[node] = w * 32 + 31 - Math.clz32(bits & -bits);
        }
        this.freeRows.push(this.row[node]!);
      }
    }
    this.holders[node]!--;
    this.release(node);
    return true;
  }

  private release(node: number): void {
    while (
      node >= 0 &&
      this.holders[node] === 0 &&
      this.firstChild[node] === -1 &&
      this.parent[node] !== FREED
    ) {
      const up = this.parent[node]!;
      this.nodeOf.delete(this.seqLo[node]!, this.seqHi[node]!);
      this.parent[node] = FREED;
      this.freeNodes.push(node);
      this.liveNodes--;
      const prev = this.prevSibling[node]!;
      const next = this.nextSibling[node]!;
      if (next >= 0) this.prevSibling[next] = prev;
      if (prev >= 0) this.nextSibling[prev] = next;
      else if (up >= 0) this.firstChild[up] = next;
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
      const node = this.nodeOf.get(seq[2 * depth]!, seq[2 * depth + 1]!);
      if (node < 0) break;
      if (!this.narrow(node, depth, scores)) break;
      depth++;
      if (prefixClosed) depth = this.gallop(seq, depth, n);
    }
    this.scoreRest(depth, scores);
    return depth;
  }

  private heldByAll(seq: HashSeq, i: number): boolean {
    const node = this.nodeOf.get(seq[2 * i]!, seq[2 * i + 1]!);
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

  /** Visits live nodes in creation order of their slots; parents may come after children when slots are reused. */
  forEachNode(fn: (node: number) => void): void {
    for (let node = 0; node < this.nextNode; node++) if (this.parent[node] !== FREED) fn(node);
  }

  /** Visits the targets holding the node, in ascending order. */
  forEachHolder(node: number, fn: (target: number) => void): void {
    const sole = this.sole[node]!;
    if (sole !== MANY) {
      if (sole >= 0) fn(sole);
      return;
    }
    const base = this.row[node]! * this.words;
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
    for (let c = this.firstChild[node]!; c >= 0; c = this.nextSibling[c]!) if (this.holds(c, target)) n++;
    return n;
  }

  parentOf(node: number): number {
    return this.parent[node]!;
  }

  /** Low and high halves of the node's sequence hash (separate, so hot paths allocate no tuple). */
  seqLoOf(node: number): number {
    return this.seqLo[node]!;
  }

  seqHiOf(node: number): number {
    return this.seqHi[node]!;
  }

  seqOf(node: number): [lo: number, hi: number] {
    return [this.seqLo[node]!, this.seqHi[node]!];
  }

  localOf(node: number): [lo: number, hi: number] {
    return [this.localLo[node]!, this.localHi[node]!];
  }

  holderCount(node: number): number {
    return this.holders[node]!;
  }
}
