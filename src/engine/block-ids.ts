import type { BlockDirectory } from "../kv/block-directory.ts";
import type { HashSeq } from "../kv/hash-seq.ts";
import { HashTable, type SharedHashTable } from "../kv/hash-table.ts";
import { resized } from "../kv/typed-arrays.ts";

const RECORD = 5;

/** The ids of a trace in memory other threads can read (see `BlockIds.share`). */
export interface SharedBlockIds {
  table: SharedHashTable;
  records: Uint32Array;
  count: number;
}

/**
 * Dense integer ids for the KV blocks of a simulation, one per sequence hash, so engines keep their caches in
 * plain Maps of small integers. Each id remembers its hashes and its parent (a sequence hash fixes the whole
 * prefix, so the parent is unique), which is what the router's KV index needs from an engine's events.
 */
export class BlockIds implements BlockDirectory {
  private readonly idOf: HashTable;
  /** Per id, one record (events read all of it at once): sequence lo, hi, local lo, hi, parent id + 1 (0: none). */
  private records: Uint32Array = new Uint32Array(RECORD * (1 << 16));
  private count = 0;
  /** Over shared memory (`fromShared`): other threads read the same ids, so none may be added. */
  private readOnly = false;

  /**
   * `expectedBlocks`, the prompt blocks about to be interned counting repeats, sizes the table up front: growing it
   * rehashes every id so far, at a cache miss each. Traces share prefixes, so half as many distinct ones are
   * expected; a trace that shares less makes the table grow once. (`table` is for `fromShared`.)
   */
  constructor(expectedBlocks = 1 << 17, table?: HashTable) {
    this.idOf = table ?? new HashTable(2, Math.max(1 << 16, Math.ceil(expectedBlocks / 2)));
  }

  get size(): number {
    return this.count;
  }

  /** The ids in shared memory, for threads that replay the same trace (they must intern nothing more). */
  share(): SharedBlockIds {
    const used = this.count * RECORD;
    const records = new Uint32Array(new SharedArrayBuffer(used * 4));
    records.set(this.records.subarray(0, used));
    return { table: this.idOf.share(), records, count: this.count };
  }

  /** Ids over shared memory (see `share`): read-only, so interning a block not already in them throws. */
  static fromShared(shared: SharedBlockIds): BlockIds {
    const ids = new BlockIds(0, HashTable.fromShared(shared.table));
    ids.records = shared.records;
    ids.count = shared.count;
    ids.readOnly = true;
    return ids;
  }

  /** Ids of a prompt's full blocks, given their sequence and local hashes. */
  intern(seqs: HashSeq, locals: HashSeq): number[] {
    if (this.readOnly)
      throw new Error("block ids shared between threads are read-only: intern before sharing");
    const n = seqs.length >>> 1;
    const ids = new Array<number>(n);
    let parent = -1;
    for (let i = 0; i < n; i++) {
      const id = this.idOf.getOrInsert(seqs[2 * i]!, seqs[2 * i + 1]!, 0, this.count);
      if (id === this.count) {
        if ((id + 1) * RECORD > this.records.length)
          this.records = resized(this.records, this.records.length * 2);
        const r = id * RECORD;
        this.records[r] = seqs[2 * i]!;
        this.records[r + 1] = seqs[2 * i + 1]!;
        this.records[r + 2] = locals[2 * i]!;
        this.records[r + 3] = locals[2 * i + 1]!;
        this.records[r + 4] = parent + 1;
        this.count++;
      }
      ids[i] = id;
      parent = id;
    }
    return ids;
  }

  find(seqLo: number, seqHi: number): number {
    return this.idOf.get(seqLo, seqHi);
  }

  parentOf(id: number): number {
    return this.records[id * RECORD + 4]! - 1;
  }

  seqLoOf(id: number): number {
    return this.records[id * RECORD]!;
  }

  seqHiOf(id: number): number {
    return this.records[id * RECORD + 1]!;
  }

  localLoOf(id: number): number {
    return this.records[id * RECORD + 2]!;
  }

  localHiOf(id: number): number {
    return this.records[id * RECORD + 3]!;
  }
}
