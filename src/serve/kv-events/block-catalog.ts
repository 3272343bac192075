import type { VllmWireEvent } from "../../kv/codec-vllm.ts";
import { vllmBlockHashes } from "../../kv/vllm-hash.ts";

/** The part of BlockIds the catalog needs: a block's parent (−1 for a first block). */
export interface BlockParents {
  parentOf(id: number): number;
}

const DIGEST = 32;

/**
 * What a vLLM engine would publish for the mock engine's blocks. The engine names blocks by dense ids (BlockIds);
 * vLLM's events carry each block's own hash, its parent's and its tokens, so the catalog keeps every noted block's
 * tokens and computes its vLLM hash (`sha256_cbor` under PYTHONHASHSEED, see vllm-hash.ts) the first time the block
 * is stored: the ids on the wire are what `vllm serve --prefix-caching-hash-algo sha256_cbor` would send for the
 * same tokens.
 */
export class VllmBlockCatalog {
  readonly blockSize: number;
  private readonly parents: BlockParents;
  private readonly seed: string;
  private tokens = new Uint32Array(0);
  private noted = new Uint8Array(0);
  private digests = new Uint8Array(0);
  private hashed = new Uint8Array(0);
  private external = new BigUint64Array(0);

  constructor(parents: BlockParents, blockSize: number, pythonHashSeed: string) {
    if (!Number.isSafeInteger(blockSize) || blockSize < 1)
      throw new RangeError(`block size must be a positive integer, got ${blockSize}`);
    this.parents = parents;
    this.blockSize = blockSize;
    this.seed = pythonHashSeed;
  }

  private fit(id: number): void {
    if (id < this.noted.length) return;
    let cap = Math.max(1024, this.noted.length);
    while (cap <= id) cap *= 2;
    const grow = <T extends Uint8Array | Uint32Array | BigUint64Array>(
      a: T,
      per: number,
      make: (n: number) => T,
    ): T => {
      const next = make(cap * per);
      next.set(a as never);
      return next;
    };
    this.tokens = grow(this.tokens, this.blockSize, (n) => new Uint32Array(n));
    this.noted = grow(this.noted, 1, (n) => new Uint8Array(n));
    this.digests = grow(this.digests, DIGEST, (n) => new Uint8Array(n));
    this.hashed = grow(this.hashed, 1, (n) => new Uint8Array(n));
    this.external = grow(this.external, 1, (n) => new BigUint64Array(n));
  }

  /** Records the tokens of a prompt's full blocks, `ids[i]` holding tokens `[i·B, (i+1)·B)`. */
  note(ids: readonly number[], tokenIds: ArrayLike<number>): void {
    if (tokenIds.length < ids.length * this.blockSize)
      throw new RangeError(
        `${ids.length} blocks need ${ids.length * this.blockSize} tokens, got ${tokenIds.length}`,
      );
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      this.fit(id);
      if (this.noted[id] === 1) continue;
      const base = id * this.blockSize;
      for (let k = 0; k < this.blockSize; k++) this.tokens[base + k] = tokenIds[i * this.blockSize + k]!;
      this.noted[id] = 1;
    }
  }

  private tokensOf(id: number): number[] {
    if (id >= this.noted.length || this.noted[id] !== 1)
      throw new Error(`block ${id} was stored before its tokens were noted`);
    return Array.from(this.tokens.subarray(id * this.blockSize, (id + 1) * this.blockSize));
  }

  /** Hashes the block (and any unhashed ancestors, root first) unless already done. */
  private ensureHashed(id: number): void {
    if (this.hashed[id] === 1) return;
    const chain: number[] = [];
    for (let b = id; b >= 0 && this.hashed[b] !== 1; b = this.parents.parentOf(b)) chain.push(b);
    for (let i = chain.length - 1; i >= 0; i--) {
      const b = chain[i]!;
      const p = this.parents.parentOf(b);
      const parentDigest = p < 0 ? undefined : this.digests.subarray(p * DIGEST, (p + 1) * DIGEST);
      const [h] = vllmBlockHashes(this.tokensOf(b), this.blockSize, {
        pythonHashSeed: this.seed,
        ...(parentDigest ? { parentDigest } : {}),
      });
      this.digests.set(h!.digest, b * DIGEST);
      this.external[b] = h!.externalId;
      this.hashed[b] = 1;
    }
  }

  /** The id vLLM publishes for the block. */
  vllmHash(id: number): bigint {
    this.ensureHashed(id);
    return this.external[id]!;
  }

  /**
   * BlockStored events for blocks the engine just stored, one per run of blocks that chain one after the other
   * (as vLLM emits one event per request's newly cached run), each naming its run's parent.
   */
  storedEvents(ids: readonly number[], out: VllmWireEvent[]): void {
    let i = 0;
    while (i < ids.length) {
      let j = i + 1;
      while (j < ids.length && this.parents.parentOf(ids[j]!) === ids[j - 1]) j++;
      const run = ids.slice(i, j);
      const parent = this.parents.parentOf(run[0]!);
      const tokenIds: number[] = [];
      for (const id of run) for (const t of this.tokensOf(id)) tokenIds.push(t);
      out.push({
        type: "BlockStored",
        blockHashes: run.map((id) => this.vllmHash(id)),
        parentBlockHash: parent < 0 ? null : this.vllmHash(parent),
        tokenIds,
        blockSize: this.blockSize,
        loraId: null,
        medium: "GPU",
      });
      i = j;
    }
  }

  removedEvent(ids: readonly number[]): VllmWireEvent {
    return { type: "BlockRemoved", blockHashes: ids.map((id) => this.vllmHash(id)), medium: "GPU" };
  }
}
