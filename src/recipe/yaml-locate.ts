import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, type Pair } from "yaml";

export interface SourcePosition {
  line: number;
  col: number;
}

/** How far a path could be followed in the YAML source, and where the deepest node found starts. */
export interface LocatedPath {
  position: SourcePosition;
  /** True when every segment exists in the source; false when a parent's position stands in for a missing node. */
  exact: boolean;
}

type PathSegment = string | number | symbol;

function followAlias(doc: Document, node: unknown): unknown {
  // Cycles are rejected by the parser, so a bounded chase only guards against pathological alias chains.
  let current = node;
  for (let hops = 0; hops < 64 && isAlias(current); hops++) current = current.resolve(doc);
  return current;
}

function keyMatches(pair: Pair, segment: PathSegment): boolean {
  const key = pair.key;
  const value = isScalar(key) ? key.value : key;
  return value !== null && value !== undefined && String(value) === String(segment);
}

function isMergePair(pair: Pair): boolean {
  return isScalar(pair.key) && pair.key.value === "<<";
}

/** The pair for `segment` in a mapping, looking through `<<` merge keys the way the loader's `merge` option does. */
function findPair(doc: Document, map: unknown, segment: PathSegment, depth = 0): Pair | undefined {
  if (!isMap(map) || depth > 16) return undefined;
  const direct = map.items.find((pair) => !isMergePair(pair) && keyMatches(pair, segment));
  if (direct) return direct;
  for (const pair of map.items) {
    if (!isMergePair(pair)) continue;
    const source = followAlias(doc, pair.value);
    const sources = isSeq(source) ? source.items.map((item) => followAlias(doc, item)) : [source];
    for (const merged of sources) {
      const found = findPair(doc, merged, segment, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

function startOf(node: unknown, lineCounter: LineCounter): SourcePosition | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? lineCounter.linePos(range[0]) : undefined;
}

/**
 * Where the value at `path` (as a schema error names it) is written. A mapping entry is located by its key, since
 * that is the line a reader looks for; a missing entry falls back to its nearest written ancestor.
 */
export function locatePath(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly PathSegment[],
): LocatedPath {
  let node: unknown = followAlias(doc, doc.contents);
  let position = startOf(node, lineCounter) ?? { line: 1, col: 1 };
  for (const segment of path) {
    if (isMap(node)) {
      const pair = findPair(doc, node, segment);
      if (!pair) return { position, exact: false };
      position = startOf(pair.key, lineCounter) ?? position;
      node = followAlias(doc, pair.value);
    } else if (isSeq(node) && typeof segment === "number" && segment < node.items.length) {
      const item = node.items[segment];
      position = startOf(item, lineCounter) ?? position;
      node = followAlias(doc, item);
    } else {
      return { position, exact: false };
    }
  }
  return { position, exact: true };
}
