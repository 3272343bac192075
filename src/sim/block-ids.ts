import type { HashSeq } from "../kv/hash-seq.ts";
import { HashTable } from "../kv/hash-table.ts";
import { resized } from "../kv/typed-arrays.ts";

/**
 * Dense integer ids for the KV blocks of a simulation, one per sequence hash, so engines keep their caches in
 * plain Maps of small integers. Each id remembers its hashes and its parent (a sequence hash fixes the whole
 * prefix, so the parent is unique), which is what the router's KV index needs from an engine's events.
 */
export class BlockIds {
  private readonly idOf = new HashTable(2, 1 << 16);
  private seqLo = new Uint32Array(1 << 16);
  private seqHi = new Uint32Array(1 << 16);
  private localLo = new Uint32Array(1 << 16);
  private localHi = new Uint32Array(1 << 16);
  private parent = new Int32Array(1 << 16);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Ids of a prompt's full blocks, given their sequence and local hashes. */
  intern(seqs: HashSeq, locals: HashSeq): number[] {
    const n = seqs.length >>> 1;
    const ids = new Array<number>(n);
    let parent = -1;
    for (let i = 0; i < n; i++) {
      const id = this.idOf.getOrInsert(seqs[2 * i]!, seqs[2 * i + 1]!, 0, this.count);
      if (id === this.count) {
        if (id >= this.parent.length) this.grow();
        this.seqLo[id] = seqs[2 * i]!;
        this.seqHi[id] = seqs[2 * i + 1]!;
        this.localLo[id] = locals[2 * i]!;
        this.localHi[id] = locals[2 * i + 1]!;
        this.parent[id] = parent;
        this.count++;
      }
      ids[i] = id;
      parent = id;
    }
    return ids;
  }

  parentOf(id: number): number {
    return this.parent[id]!;
  }

  seqLoOf(id: number): number {
    return this.seqLo[id]!;
  }

  seqHiOf(id: number): number {
    return this.seqHi[id]!;
  }

  localLoOf(id: number): number {
    return this.localLo[id]!;
  }

  localHiOf(id: number): number {
    return this.localHi[id]!;
  }

  private grow(): void {
    const cap = this.parent.length * 2;
    this.seqLo = resized(this.seqLo, cap);
    this.seqHi = resized(this.seqHi, cap);
    this.localLo = resized(this.localLo, cap);
    this.localHi = resized(this.localHi, cap);
    this.parent = resized(this.parent, cap);
  }
}
