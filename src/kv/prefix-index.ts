import type { HashSeq } from "./hash-seq.ts";
import { HashTable } from "./hash-table.ts";

const FREED = -2;

/**
 * The block tree shared by the KV index and the active-load tracker. A node is one block, identified by its
 * sequence hash (which already encodes the whole prefix, so no per-node child maps are needed) and holding a
 * bitset of the targets that hold the block. Matching a request walks its sequence hashes once, intersecting
 * bitsets: the cost is (blocks × ⌈targets/32⌉) word operations, whatever the number of holders.
 *
 * Nodes remember their parent and local hash (to dump the tree as events) and are freed when no target holds them
 * and no child node remains.
 */
export class PrefixIndex {
  private words: number;
  private readonly nodeOf = new HashTable(2, 4096);
  private capacity = 0;
  private nextNode = 0;
  private readonly freeNodes: number[] = [];
  private seqLo = new Uint32Array(0);
  private seqHi = new Uint32Array(0);
  private localLo = new Uint32Array(0);
  private localHi = new Uint32Array(0);
  private parent = new Int32Array(0);
  private children = new Int32Array(0);
  private holders = new Int32Array(0);
  private bits = new Uint32Array(0);
  private alive = new Uint32Array(1);
  private liveNodes = 0;

  constructor(targetCapacity = 32, nodeCapacity = 1024) {
    this.words = Math.max(1, Math.ceil(targetCapacity / 32));
    this.growNodes(nodeCapacity);
  }

  get targetCapacity(): number {
    return this.words * 32;
  }

  get nodeCount(): number {
    return this.liveNodes;
  }

  get bytes(): number {
    const perNode = 4 * 6 + 4 * this.words;
    return this.capacity * perNode + this.nodeOf.bytes;
  }

  /** Widens every node's bitset so targets up to `n − 1` fit. */
  ensureTargets(n: number): void {
    const words = Math.ceil(n / 32);
    if (words <= this.words) return;
    const bits = new Uint32Array(this.capacity * words);
    for (let node = 0; node < this.nextNode; node++) {
      bits.set(this.bits.subarray(node * this.words, (node + 1) * this.words), node * words);
    }
    this.bits = bits;
    this.words = words;
  }

  private growNodes(min: number): void {
    let cap = Math.max(16, this.capacity);
    while (cap < min) cap *= 2;
    if (cap === this.capacity) return;
    const grow = <T extends Uint32Array | Int32Array>(old: T, make: (n: number) => T, per = 1): T => {
      const next = make(cap * per);
      next.set(old);
      return next;
    };
    const u32 = (n: number) => new Uint32Array(n);
    const i32 = (n: number) => new Int32Array(n);
    this.seqLo = grow(this.seqLo, u32);
    this.seqHi = grow(this.seqHi, u32);
    this.localLo = grow(this.localLo, u32);
    this.localHi = grow(this.localHi, u32);
    this.parent = grow(this.parent, i32);
    this.children = grow(this.children, i32);
    this.holders = grow(this.holders, i32);
    this.bits = grow(this.bits, u32, this.words);
    this.capacity = cap;
  }

  /** The node with this sequence hash, or −1. */
  find(seqLo: number, seqHi: number): number {
    return this.nodeOf.get(seqLo, seqHi);
  }

  /** The node with this sequence hash, created under `parentNode` (−1 for the root) if new. */
  ensure(seqLo: number, seqHi: number, parentNode: number, localLo: number, localHi: number): number {
    const existing = this.nodeOf.get(seqLo, seqHi);
    if (existing >= 0) return existing;
    let node = this.freeNodes.pop();
    if (node === undefined) {
      node = this.nextNode++;
      if (node >= this.capacity) this.growNodes(node + 1);
    }
    this.nodeOf.set(seqLo, seqHi, 0, node);
    this.seqLo[node] = seqLo;
    this.seqHi[node] = seqHi;
    this.localLo[node] = localLo;
    this.localHi[node] = localHi;
    this.parent[node] = parentNode;
    this.children[node] = 0;
    this.holders[node] = 0;
    this.bits.fill(0, node * this.words, (node + 1) * this.words);
    if (parentNode >= 0) this.children[parentNode]!++;
    this.liveNodes++;
    return node;
  }

  holds(node: number, target: number): boolean {
    return ((this.bits[node * this.words + (target >>> 5)]! >>> (target & 31)) & 1) === 1;
  }

  /** Marks `target` as holding `node`; returns false when it already did. */
  addHolder(node: number, target: number): boolean {
    const w = node * this.words + (target >>> 5);
    const bit = 1 << (target & 31);
    if (this.bits[w]! & bit) return false;
    this.bits[w]! |= bit;
    this.holders[node]!++;
    return true;
  }

  /** Unmarks `target`; frees the node (and any ancestors left empty) once nobody holds it. */
  removeHolder(node: number, target: number): boolean {
    const w = node * this.words + (target >>> 5);
    const bit = 1 << (target & 31);
    if (!(this.bits[w]! & bit)) return false;
    this.bits[w]! &= ~bit;
    this.holders[node]!--;
    this.release(node);
    return true;
  }

  private release(node: number): void {
    while (
      node >= 0 &&
      this.holders[node] === 0 &&
      this.children[node] === 0 &&
      this.parent[node] !== FREED
    ) {
      const up = this.parent[node]!;
      this.nodeOf.delete(this.seqLo[node]!, this.seqHi[node]!);
      this.parent[node] = FREED;
      this.freeNodes.push(node);
      this.liveNodes--;
      if (up >= 0) this.children[up]!--;
      node = up;
    }
  }

  /**
   * For every target t < targetCapacity, writes to scores[t] how many leading blocks of `seq` it holds (a block
   * counts only if the target also holds every block before it). Returns how many leading blocks any target holds.
   */
  match(seq: HashSeq, scores: Int32Array): number {
    const W = this.words;
    if (this.alive.length < W) this.alive = new Uint32Array(W);
    const alive = this.alive;
    alive.fill(0xffffffff, 0, W);
    scores.fill(0, 0, W * 32);
    const n = seq.length >>> 1;
    let depth = 0;
    for (; depth < n; depth++) {
      const node = this.nodeOf.get(seq[2 * depth]!, seq[2 * depth + 1]!);
      if (node < 0) break;
      const base = node * W;
      let any = 0;
      for (let w = 0; w < W; w++) {
        const a = alive[w]!;
        if (a === 0) continue;
        const kept = a & this.bits[base + w]!;
        let dropped = a & ~kept;
        while (dropped !== 0) {
          const low = dropped & -dropped;
          scores[w * 32 + 31 - Math.clz32(low)] = depth;
          dropped ^= low;
        }
        alive[w] = kept;
        any |= kept;
      }
      if (any === 0) return depth;
    }
    for (let w = 0; w < W; w++) {
      let rest = alive[w]!;
      while (rest !== 0) {
        const low = rest & -rest;
        scores[w * 32 + 31 - Math.clz32(low)] = depth;
        rest ^= low;
      }
    }
    return depth;
  }

  /** Visits live nodes in creation order of their slots; parents may come after children when slots are reused. */
  forEachNode(fn: (node: number) => void): void {
    for (let node = 0; node < this.nextNode; node++) if (this.parent[node] !== FREED) fn(node);
  }

  parentOf(node: number): number {
    return this.parent[node]!;
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
