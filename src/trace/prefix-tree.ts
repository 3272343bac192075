import { ServelabError } from "../errors.ts";
import type { TraceRow } from "./types.ts";

/** Where a walk through the tree may go from a node: into a child, into a unique suffix, or stop. */
export const CACHE_END = -1;
export const END_NODE = -2;

/** A node of the core radix tree: a maximal chain of blocks that requests always traverse together. */
export interface RadixNode {
  /** Label of the chain's deepest block (labels along a chain are consecutive). */
  label: number;
  /** Blocks in the chain. */
  length: number;
  /** Requests that passed through this node. */
  visited: number;
  /** Outcomes (child indices into `nodes`, CACHE_END, END_NODE) and their cumulative probabilities. */
  outcomes: number[];
  cdf: number[];
}

export interface PrefixTree {
  /** nodes[0] is the super-root (label −1, length 0). */
  nodes: RadixNode[];
  /** Length in blocks of every unique suffix (the leaves removed from the tree), one per request that had one. */
  leafLengths: number[];
  /** Largest block label in use (core and leaves). */
  maxLabel: number;
}

/**
 * Relabels each request's block ids so a label stands for one (parent label, id) pair: the trace then forms a
 * proper tree even where the source reused an id under different parents. Labels are handed out in order of first
 * appearance, so a parent's label is always smaller than its children's.
 */
function relabel(rows: readonly TraceRow[]): { paths: Int32Array[]; parentOf: number[] } {
  const labelOf = new Map<string, number>();
  const parentOf: number[] = [];
  const paths: Int32Array[] = [];
  for (const row of rows) {
    if (row.hash_ids.length === 0) continue;
    const path = new Int32Array(row.hash_ids.length);
    let parent = -1;
    for (let i = 0; i < row.hash_ids.length; i++) {
      const key = `${parent},${row.hash_ids[i]}`;
      let label = labelOf.get(key);
      if (label === undefined) {
        label = parentOf.length;
        labelOf.set(key, label);
        parentOf.push(parent);
      }
      path[i] = label;
      parent = label;
    }
    paths.push(path);
  }
  return { paths, parentOf };
}

/**
 * Builds the core radix tree of Dynamo's prefix data generator from a trace: count how many requests pass through
 * and end at each block, merge chains of blocks with equal pass counts into single nodes, and cut off the blocks
 * visited by one request only (unique user-prompt suffixes), keeping their lengths as an empirical distribution.
 */
export function buildPrefixTree(rows: readonly TraceRow[]): PrefixTree {
  const { paths, parentOf } = relabel(rows);
  if (paths.length === 0)
    throw new ServelabError("SYNTH_INPUT", "the input trace has no request with hash_ids");
  const n = parentOf.length;
  const visited = new Int32Array(n);
  const ends = new Int32Array(n);
  const outDegree = new Int32Array(n);
  const onlyChild = new Int32Array(n).fill(-1);
  for (const path of paths) {
    for (const label of path) visited[label]!++;
    ends[path[path.length - 1]!]!++;
  }
  for (let v = 0; v < n; v++) {
    const p = parentOf[v]!;
    if (p >= 0) {
      outDegree[p]!++;
      onlyChild[p] = v;
    }
  }
  // A block merges into its only child when every request that reaches it goes on to that child.
  const mergesDown = (v: number) => outDegree[v] === 1 && visited[onlyChild[v]!] === visited[v];

  const nodes: RadixNode[] = [{ label: -1, length: 0, visited: paths.length, outcomes: [], cdf: [] }];
  const indexOfLast = new Map<number, number>([[-1, 0]]);
  const weights: number[][] = [[]];
  const toLeaf: number[] = [0];
  const leafLengths: number[] = [];
  // Parents are labelled before children, so one ascending sweep meets every chain start after its parent node.
  for (let start = 0; start < n; start++) {
    const p = parentOf[start]!;
    if (p >= 0 && mergesDown(p)) continue;
    let last = start;
    let length = 1;
    while (mergesDown(last)) {
      last = onlyChild[last]!;
      length++;
    }
    const parentIndex = indexOfLast.get(p)!;
    if (visited[start] === 1) {
      leafLengths.push(length);
      toLeaf[parentIndex]!++;
      continue;
    }
    const index = nodes.length;
    nodes.push({ label: last, length, visited: visited[start]!, outcomes: [], cdf: [] });
    indexOfLast.set(last, index);
    weights.push([]);
    toLeaf.push(0);
    nodes[parentIndex]!.outcomes.push(index);
    weights[parentIndex]!.push(visited[start]!);
  }
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    const w = weights[i]!;
    node.outcomes.push(CACHE_END, END_NODE);
    w.push(toLeaf[i]!, node.label >= 0 ? ends[node.label]! : 0);
    const total = w.reduce((a, b) => a + b, 0);
    let acc = 0;
    node.cdf = w.map((x) => {
      acc += x;
      return acc / total;
    });
  }
  return { nodes, leafLengths, maxLabel: n - 1 };
}
