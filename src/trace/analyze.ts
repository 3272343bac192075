import { type Summary, summarize } from "../metrics/summary.ts";
import { PrefixLru } from "./prefix-lru.ts";
import { DEFAULT_TRACE_BLOCK_SIZE, type TraceRow } from "./types.ts";

export interface AnalyzeOptions {
  blockSize?: number;
  /** Global LRU prefix-cache sizes to replay, in tokens. */
  cacheSizesTokens?: readonly number[];
}

export interface LruResult {
  /** The requested size; the cache holds `cache_blocks` = ⌊cache_tokens / block_size⌋ whole blocks. */
  cache_tokens: number;
  cache_blocks: number;
  /** Leading blocks found in the cache / all blocks. */
  block_hit_rate: number;
  /** Tokens of those blocks (the last, partial block at its real size) / all prompt tokens. */
  token_hit_rate: number;
}

export interface TraceAnalysis {
  requests: number;
  block_size: number;
  duration_s: number;
  arrival_rate_per_s: number;
  total_input_tokens: number;
  total_output_tokens: number;
  isl: Summary;
  osl: Summary;
  total_blocks: number;
  unique_blocks: number;
  /** 1 − unique/total: occurrences of a block id seen anywhere earlier in the file (infinite cache, file order). */
  block_hit_rate: number;
  /** The same, weighted by each block's tokens (a last, partial block counts its real size). */
  token_hit_rate: number;
  /** Mean over requests of (leading blocks already seen in earlier requests) / (blocks of the request). */
  mean_request_hit_rate: number;
  /** Σ shared-prefix tokens / Σ input tokens. */
  shared_prefix_ratio: number;
  /** `context_len` when every row carries it (synthesized traces), else Dynamo's prefix-analyzer rule. */
  shared_prefix_source: "context_len" | "repeated_blocks";
  context_len?: Summary;
  unique_user_prompt_len?: Summary;
  lru: LruResult[];
}

function blockTokens(row: TraceRow, i: number, blockSize: number): number {
  return i === row.hash_ids.length - 1 ? row.input_length - i * blockSize : blockSize;
}

/**
 * Computes a trace's statistics in one streaming pass (plus a second pass over the rows, only when the rows carry
 * no `context_len`, because the prefix-analyzer rule needs to know which ids recur anywhere in the file).
 * Memory grows with the number of distinct block ids and requests, never with the file's bytes.
 */
export class TraceAnalyzer {
  readonly blockSize: number;
  private readonly idCounts = new Map<number, number>();
  private readonly isl: number[] = [];
  private readonly osl: number[] = [];
  private readonly contextLen: number[] = [];
  private readonly uniquePromptLen: number[] = [];
  private readonly cacheSizesTokens: number[];
  private readonly lrus: PrefixLru[];
  private readonly lruHitBlocks: number[];
  private readonly lruHitTokens: number[];
  private rows = 0;
  private rowsWithContext = 0;
  private firstTs = Number.POSITIVE_INFINITY;
  private lastTs = Number.NEGATIVE_INFINITY;
  private totalBlocks = 0;
  private totalInputTokens = 0;
  private totalOutputTokens = 0;
  private hitTokens = 0;
  private requestHitRateSum = 0;
  private requestsWithBlocks = 0;
  private sharedTokensByRepeats = 0;
  private secondPassRows = 0;

  constructor(opts: AnalyzeOptions = {}) {
    this.blockSize = opts.blockSize ?? DEFAULT_TRACE_BLOCK_SIZE;
    this.cacheSizesTokens = [...(opts.cacheSizesTokens ?? [])];
    this.lrus = this.cacheSizesTokens.map((t) => new PrefixLru(Math.floor(t / this.blockSize)));
    this.lruHitBlocks = this.lrus.map(() => 0);
    this.lruHitTokens = this.lrus.map(() => 0);
  }

  add(row: TraceRow): void {
    const ids = row.hash_ids;
    this.rows++;
    if (row.timestamp !== undefined) {
      this.firstTs = Math.min(this.firstTs, row.timestamp);
      this.lastTs = Math.max(this.lastTs, row.timestamp);
    }
    this.isl.push(row.input_length);
    this.osl.push(row.output_length);
    this.totalInputTokens += row.input_length;
    this.totalOutputTokens += row.output_length;
    if (row.context_len !== undefined) {
      this.rowsWithContext++;
      this.contextLen.push(row.context_len);
      this.uniquePromptLen.push(row.unique_user_prompt_len ?? row.input_length - row.context_len);
    }
    let leadingSeen = 0;
    let leading = true;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const n = this.idCounts.get(id);
      if (n === undefined) {
        leading = false;
        this.idCounts.set(id, 1);
      } else {
        this.hitTokens += blockTokens(row, i, this.blockSize);
        if (leading) leadingSeen++;
        // Ids repeated within one request count as seen by that request's later blocks, as in a real cache.
        this.idCounts.set(id, n + 1);
      }
    }
    this.totalBlocks += ids.length;
    if (ids.length > 0) {
      this.requestsWithBlocks++;
      this.requestHitRateSum += leadingSeen / ids.length;
    }
    for (let c = 0; c < this.lrus.length; c++) {
      const hits = this.lrus[c]!.access(ids);
      this.lruHitBlocks[c]! += hits;
      for (let i = 0; i < hits; i++) this.lruHitTokens[c]! += blockTokens(row, i, this.blockSize);
    }
  }

  /** True when `shared_prefix_ratio` needs the rows a second time (see `addSecondPass`). */
  get needsSecondPass(): boolean {
    return this.rowsWithContext !== this.rows;
  }

  /**
   * Second pass, in any order: Dynamo's prefix analyzer counts a request's blocks whose id recurs anywhere in the
   * file as shared prefix (the whole prompt when every block recurs).
   */
  addSecondPass(row: TraceRow): void {
    this.secondPassRows++;
    let repeated = 0;
    for (const id of row.hash_ids) if ((this.idCounts.get(id) ?? 0) > 1) repeated++;
    this.sharedTokensByRepeats +=
      repeated === row.hash_ids.length
        ? row.input_length
        : Math.min(repeated * this.blockSize, row.input_length);
  }

  finish(): TraceAnalysis {
    if (this.needsSecondPass && this.secondPassRows !== this.rows) {
      throw new Error(`analyzer second pass saw ${this.secondPassRows} of ${this.rows} rows`);
    }
    const span = this.lastTs >= this.firstTs ? (this.lastTs - this.firstTs) / 1000 : 0;
    const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
    const useContext = !this.needsSecondPass;
    const sharedTokens = useContext ? this.contextLen.reduce((a, b) => a + b, 0) : this.sharedTokensByRepeats;
    const result: TraceAnalysis = {
      requests: this.rows,
      block_size: this.blockSize,
      duration_s: span,
      arrival_rate_per_s: ratio(this.rows, span),
      total_input_tokens: this.totalInputTokens,
      total_output_tokens: this.totalOutputTokens,
      isl: summarize(this.isl),
      osl: summarize(this.osl),
      total_blocks: this.totalBlocks,
      unique_blocks: this.idCounts.size,
      block_hit_rate: this.totalBlocks === 0 ? 0 : 1 - this.idCounts.size / this.totalBlocks,
      token_hit_rate: ratio(this.hitTokens, this.totalInputTokens),
      mean_request_hit_rate: ratio(this.requestHitRateSum, this.requestsWithBlocks),
      shared_prefix_ratio: ratio(sharedTokens, this.totalInputTokens),
      shared_prefix_source: useContext ? "context_len" : "repeated_blocks",
      lru: this.lrus.map((lru, c) => ({
        cache_tokens: this.cacheSizesTokens[c]!,
        cache_blocks: lru.capacityBlocks,
        block_hit_rate: ratio(this.lruHitBlocks[c]!, this.totalBlocks),
        token_hit_rate: ratio(this.lruHitTokens[c]!, this.totalInputTokens),
      })),
    };
    if (useContext) {
      result.context_len = summarize(this.contextLen);
      result.unique_user_prompt_len = summarize(this.uniquePromptLen);
    }
    return result;
  }
}

/** Analyzes rows already in memory. */
export function analyzeRows(rows: readonly TraceRow[], opts: AnalyzeOptions = {}): TraceAnalysis {
  const a = new TraceAnalyzer(opts);
  for (const row of rows) a.add(row);
  if (a.needsSecondPass) for (const row of rows) a.addSecondPass(row);
  return a.finish();
}
