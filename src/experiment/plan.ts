import { join } from "node:path";
import { ServelabError } from "../errors.ts";

/**
 * One load point of an experiment: the trace's arrival rate scaled by `load` (Dynamo's `--speedup-ratio`: every
 * timestamp divided by it) on the trace synthesized with `traceSeed` (undefined: the recipe's own seed).
 */
export interface ExperimentPoint {
  load: number;
  traceSeed: number | undefined;
}

/** One arm at one point, and where its artifacts go. */
export interface ArmRun {
  arm: string;
  point: ExperimentPoint;
  /** Relative to the experiment's directory. */
  dir: string;
  /** What progress and errors call it. */
  label: string;
}

/** What `experiment.json` lists: every run of a sweep, so the report can draw its curves. */
export interface ExperimentManifest {
  recipe: string;
  loads: number[];
  /** The trace seeds, or null when the recipe's own trace was the only one. */
  seeds: number[] | null;
  /** The point the A/B's own comparison uses (the arms in `arms/`). */
  main: ExperimentPoint;
  runs: ArmRun[];
}

export const EXPERIMENT_MANIFEST = "experiment.json";

/** Largest load factor: far past any knee, and a trace compressed beyond it is a burst, not a rate. */
const MAX_LOAD = 1000;
const MAX_POINTS = 64;
export const MAX_SEEDS = 100;

/** `--load 0.5,0.75,1`: positive factors, each once, in increasing order. */
export function parseLoads(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  const loads = parts.map((p) => {
    const v = Number(p);
    if (p === "" || !Number.isFinite(v) || v <= 0 || v > MAX_LOAD)
      throw new ServelabError("USAGE", `--load takes factors in (0, ${MAX_LOAD}], got '${p}' in '${text}'`);
    return v;
  });
  if (new Set(loads).size !== loads.length)
    throw new ServelabError("USAGE", `--load lists a factor twice: '${text}'`);
  if (loads.length > MAX_POINTS)
    throw new ServelabError("USAGE", `--load takes at most ${MAX_POINTS} factors, got ${loads.length}`);
  return loads.sort((a, b) => a - b);
}

/** `--seeds N`: traces synthesized with seeds 1..N. */
export function parseSeedCount(text: string): number {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 1 || v > MAX_SEEDS)
    throw new ServelabError("USAGE", `--seeds takes a whole number from 1 to ${MAX_SEEDS}, got '${text}'`);
  return v;
}

const loadLabel = (load: number) => `load-${load}`;

/**
 * Every arm at every load and seed. The main point (load 1 when swept, else the lowest; the first seed) keeps the
 * single-run layout, `arms/<arm>`, so that a sweep's report holds the same A/B a single run gives; the others go
 * to `points/load-<L>/seed-<S>/<arm>`.
 */
export function planExperiment(
  recipe: string,
  arms: readonly string[],
  loads: readonly number[],
  seeds: readonly number[] | null,
): ExperimentManifest {
  const traceSeeds: readonly (number | undefined)[] = seeds ?? [undefined];
  const main: ExperimentPoint = { load: loads.includes(1) ? 1 : loads[0]!, traceSeed: traceSeeds[0] };
  const single = loads.length === 1 && traceSeeds.length === 1;
  const runs: ArmRun[] = [];
  for (const traceSeed of traceSeeds)
    for (const load of loads)
      for (const arm of arms) {
        const isMain = load === main.load && traceSeed === main.traceSeed;
        const dir = isMain
          ? join("arms", arm)
          : join("points", loadLabel(load), traceSeed === undefined ? "trace" : `seed-${traceSeed}`, arm);
        const label = single
          ? arm
          : `${arm} ×${load}${traceSeed === undefined || traceSeeds.length === 1 ? "" : ` seed ${traceSeed}`}`;
        runs.push({ arm, point: { load, traceSeed }, dir, label });
      }
  return { recipe, loads: [...loads], seeds: seeds ? [...seeds] : null, main, runs };
}
