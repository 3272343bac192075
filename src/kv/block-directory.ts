/**
 * A fixed set of blocks numbered 0…size−1 by their sequence hashes, known before any event arrives (a simulation
 * interns every prompt block of its trace up front). A KV index given one keeps each such block's node at the
 * block's number, and reads the block's hashes from it, so storing and evicting those blocks touches no hash table.
 */
export interface BlockDirectory {
  readonly size: number;
  /** The block's number, or −1 when the hash is not in the directory. */
  find(seqLo: number, seqHi: number): number;
  seqLoOf(id: number): number;
  seqHiOf(id: number): number;
  localLoOf(id: number): number;
  localHiOf(id: number): number;
}
