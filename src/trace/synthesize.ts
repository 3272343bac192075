import { ServelabError } from "../errors.ts";
import { createRng, type Rng } from "../random.ts";
import { EmpiricalSampler, roundHalfEven, searchCdf } from "./empirical-sampler.ts";
import { buildPrefixTree, CACHE_END, END_NODE, type PrefixTree } from "./prefix-tree.ts";
import { MAX_SYNTHESIZED_REQUESTS, type SynthesisOptions, type TraceRow } from "./types.ts";
import { MAX_REQUEST_TOKENS } from "./validate.ts";

/** Checks synthesis options; returns one message per problem, naming the option. */
export function synthesisOptionProblems(o: SynthesisOptions): string[] {
  const problems: string[] = [];
  const positiveInt = (name: string, v: number) => {
    if (!Number.isSafeInteger(v) || v < 1) problems.push(`${name} must be a positive integer, got ${v}`);
  };
  const positive = (name: string, v: number) => {
    if (!Number.isFinite(v) || v <= 0) problems.push(`${name} must be a positive number, got ${v}`);
  };
  const optionalInt = (name: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
      problems.push(`${name} must be a non-negative integer, got ${v}`);
    }
  };
  positiveInt("num-requests", o.numRequests);
  if (o.numRequests > MAX_SYNTHESIZED_REQUESTS)
    problems.push(
      `num-requests must be at most ${MAX_SYNTHESIZED_REQUESTS.toLocaleString("en-US")}, got ${o.numRequests}`,
    );
  positive("speedup-ratio", o.speedupRatio);
  positive("prefix-len-multiplier", o.prefixLenMultiplier);
  positiveInt("prefix-root-multiplier", o.prefixRootMultiplier);
  positive("prompt-len-multiplier", o.promptLenMultiplier);
  positive("osl-multiplier", o.oslMultiplier);
  positiveInt("block-size", o.blockSize);
  optionalInt("max-isl", o.maxIsl);
  optionalInt("min-isl", o.minIsl);
  optionalInt("max-osl", o.maxOsl);
  optionalInt("min-osl", o.minOsl);
  if (!Number.isSafeInteger(o.seed)) problems.push(`seed must be an integer, got ${o.seed}`);
  if (o.minIsl !== undefined && o.maxIsl !== undefined && o.minIsl > o.maxIsl) {
    problems.push(`min-isl ${o.minIsl} is above max-isl ${o.maxIsl}`);
  }
  if (o.minOsl !== undefined && o.maxOsl !== undefined && o.minOsl > o.maxOsl) {
    problems.push(`min-osl ${o.minOsl} is above max-osl ${o.maxOsl}`);
  }
  return problems;
}

export interface SynthesisStats {
  /** Requests sampled, including those dropped by the ISL filters. */
  sampled: number;
  dropped: number;
  coreNodes: number;
  leaves: number;
  /** Size of the id space of one copy of the tree; copy k of `--prefix-root-multiplier` holds ids [k·span, (k+1)·span). */
  idSpan: number;
}

export interface SynthesisResult {
  rows: TraceRow[];
  stats: SynthesisStats;
}

/** The learned arrival process and per-request length distributions of the input trace. */
interface InputSamplers {
  requestsPerInstant: EmpiricalSampler;
  gapMs: EmpiricalSampler;
  lastBlockTokens: EmpiricalSampler;
  outputLength: EmpiricalSampler;
}

function learnSamplers(rows: readonly TraceRow[], blockSize: number): InputSamplers {
  const perTimestamp = new Map<number, number>();
  const gaps: number[] = [];
  let prev: number | undefined;
  for (const row of rows) {
    if (row.timestamp === undefined) continue;
    perTimestamp.set(row.timestamp, (perTimestamp.get(row.timestamp) ?? 0) + 1);
    if (prev !== undefined && row.timestamp > prev) gaps.push(row.timestamp - prev);
    prev = row.timestamp;
  }
  if (gaps.length === 0) {
    throw new ServelabError(
      "SYNTH_INPUT",
      "the input trace needs timestamps with at least two distinct values to learn its arrival process",
    );
  }
  const withBlocks = rows.filter((r) => r.hash_ids.length > 0);
  return {
    requestsPerInstant: new EmpiricalSampler(perTimestamp.values()),
    gapMs: new EmpiricalSampler(gaps),
    lastBlockTokens: new EmpiricalSampler(
      withBlocks.map((r) => r.input_length - (r.hash_ids.length - 1) * blockSize),
    ),
    outputLength: new EmpiricalSampler(rows.map((r) => r.output_length)),
  };
}

/** Stretches (or shrinks) the core tree's chains by the prefix-length multiplier, as upstream's scaling revision. */
function scaledChains(
  tree: PrefixTree,
  m: number,
): { first: Float64Array; length: Int32Array; maxId: number } {
  const count = tree.nodes.length;
  const first = new Float64Array(count);
  const length = new Int32Array(count);
  // m > 1: every block becomes M = ceil(m) consecutive ids (block k → k·M+1 … k·M+M), so prefixes grow M-fold.
  const M = m > 1 ? Math.ceil(m) : 1;
  for (let i = 1; i < count; i++) {
    const node = tree.nodes[i]!;
    const last = m > 1 ? node.label * M + M : node.label;
    const len = m > 1 ? node.length * M : m < 1 ? Math.max(roundHalfEven(node.length * m), 1) : node.length;
    length[i] = len;
    first[i] = last - len + 1;
  }
  return { first, length, maxId: m > 1 ? tree.maxLabel * M + M : tree.maxLabel };
}

/**
 * Synthesizes a trace with the prefix structure, arrival process and length distributions of `input`, following
 * Dynamo's prefix data generator (the revision that scales prefix lengths): walk the core radix tree by its
 * transition probabilities, finish with a fresh unique suffix, and scale prefixes, suffixes and output lengths by
 * the multipliers. Unlike upstream, every draw comes from seeded streams, so the output is reproducible.
 */
export function synthesizeTrace(
  input: readonly TraceRow[],
  opts: SynthesisOptions,
  onProgress?: (done: number, total: number) => void,
): SynthesisResult {
  const problems = synthesisOptionProblems(opts);
  if (problems.length > 0) throw new ServelabError("USAGE", "invalid synthesis options", problems);
  const bs = opts.blockSize;
  // Prompts are built before the length filters apply: one longer than any request can be must not be built.
  let longest = 0;
  for (const r of input) longest = Math.max(longest, r.input_length);
  const bound = longest * Math.max(opts.prefixLenMultiplier, opts.promptLenMultiplier, 1);
  if (bound > MAX_REQUEST_TOKENS)
    throw new ServelabError(
      "USAGE",
      `the multipliers would build prompts of up to ${Math.round(bound).toLocaleString("en-US")} tokens (the input's longest, ${longest}, × ${Math.max(opts.prefixLenMultiplier, opts.promptLenMultiplier)}), above the ${MAX_REQUEST_TOKENS.toLocaleString("en-US")} a request may hold`,
    );
  const tree = buildPrefixTree(input);
  const samplers = learnSamplers(input, bs);
  const leafLengths =
    tree.leafLengths.length > 0
      ? new EmpiricalSampler(
          tree.leafLengths.map((l) => Math.max(1, roundHalfEven(l * opts.promptLenMultiplier))),
        )
      : undefined;
  const chains = scaledChains(tree, opts.prefixLenMultiplier);
  let nextFreshId = chains.maxId + 1;

  const rng = {
    timing: createRng(opts.seed, "timing"),
    paths: createRng(opts.seed, "paths"),
    leaves: createRng(opts.seed, "leaves"),
    lengths: createRng(opts.seed, "lengths"),
    roots: createRng(opts.seed, "roots"),
  } satisfies Record<string, Rng>;

  const samplePath = (): { ids: number[]; contextBlocks: number; leaf: boolean } => {
    const ids: number[] = [];
    let contextBlocks = 0;
    let node = 0;
    for (;;) {
      const current = tree.nodes[node]!;
      const outcome = current.outcomes[searchCdf(current.cdf, rng.paths.next())]!;
      if (outcome === END_NODE) return { ids, contextBlocks, leaf: false };
      if (outcome === CACHE_END) {
        const len = leafLengths!.sample(rng.leaves);
        for (let k = 0; k < len; k++) ids.push(nextFreshId++);
        return { ids, contextBlocks, leaf: true };
      }
      const first = chains.first[outcome]!;
      const len = chains.length[outcome]!;
      for (let k = 0; k < len; k++) ids.push(first + k);
      contextBlocks += len;
      node = outcome;
    }
  };

  const rows: TraceRow[] = [];
  let sampled = 0;
  let t = 0;
  while (rows.length < opts.numRequests) {
    const n = samplers.requestsPerInstant.sample(rng.timing);
    for (let k = 0; k < n && rows.length < opts.numRequests; k++) {
      const path = samplePath();
      sampled++;
      const inputLength = path.leaf
        ? (path.ids.length - 1) * bs + samplers.lastBlockTokens.sample(rng.lengths)
        : path.ids.length * bs;
      let outputLength = Math.trunc(samplers.outputLength.sample(rng.lengths) * opts.oslMultiplier);
      if (
        (opts.maxIsl !== undefined && inputLength > opts.maxIsl) ||
        (opts.minIsl !== undefined && inputLength < opts.minIsl)
      ) {
        if (sampled >= 10_000 && rows.length < sampled / 1000) throw filterError(opts, sampled, rows.length);
        continue;
      }
      if (opts.minOsl !== undefined) outputLength = Math.max(outputLength, opts.minOsl);
      if (opts.maxOsl !== undefined) outputLength = Math.min(outputLength, opts.maxOsl);
      const contextLen = Math.min(path.contextBlocks * bs, inputLength);
      rows.push({
        timestamp: t,
        input_length: inputLength,
        output_length: outputLength,
        hash_ids: path.ids,
        context_len: contextLen,
        unique_user_prompt_len: inputLength - contextLen,
      });
      if (onProgress && rows.length % 1000 === 0) onProgress(rows.length, opts.numRequests);
    }
    t += roundHalfEven(samplers.gapMs.sample(rng.timing) / opts.speedupRatio);
  }

  if (opts.prefixRootMultiplier > 1) {
    // Independent copies of the whole id space (prefixes and suffixes), one chosen at random per request.
    const span = nextFreshId;
    for (const row of rows) {
      const offset = rng.roots.int(opts.prefixRootMultiplier) * span;
      if (offset > 0) row.hash_ids = row.hash_ids.map((id) => id + offset);
    }
  }
  onProgress?.(rows.length, opts.numRequests);
  return {
    rows,
    stats: {
      sampled,
      dropped: sampled - rows.length,
      coreNodes: tree.nodes.length - 1,
      leaves: tree.leafLengths.length,
      idSpan: nextFreshId,
    },
  };
}

function filterError(opts: SynthesisOptions, sampled: number, kept: number): ServelabError {
  return new ServelabError(
    "SYNTH_FILTER",
    `the ISL filters (min-isl ${opts.minIsl ?? "none"}, max-isl ${opts.maxIsl ?? "none"}) kept ${kept} of ${sampled} sampled requests`,
    ["widen the ISL range or change the length multipliers"],
  );
}
