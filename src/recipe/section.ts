import { z } from "zod";

/**
 * A YAML mapping that rejects keys it does not know. A misspelt knob (`tokens_per_blok`) must fail loudly: silently
 * dropping it would run the experiment on a default the author never chose. The message lists the keys that are
 * allowed at that spot so the fix is visible without opening the schema.
 */
export function section<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const keys = Object.keys(shape);
  const allowed = keys.join(", ");
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== "unrecognized_keys") return undefined;
      const unknown = (issue as { keys?: string[] }).keys ?? [];
      const hints = unknown
        .map((k) => [k, closest(k, keys)] as const)
        .filter(([, near]) => near !== undefined)
        .map(([k, near]) => (unknown.length === 1 ? `did you mean ${near}?` : `${k}: did you mean ${near}?`));
      return `unknown key${hints.length > 0 ? ` (${hints.join("; ")})` : ""}; allowed here: ${allowed}`;
    },
  });
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

/** The allowed key a misspelling most likely meant: within a third of its length in edits. */
export function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const k of allowed) {
    const dk = distance(key, k);
    if (dk < bestD) {
      best = k;
      bestD = dk;
    }
  }
  return best;
}

/** A positive whole number (counts, sizes, token budgets). */
export const positiveInt = () => z.int().min(1);

/** A whole number that may be zero (offsets, worker counts that can be off). */
export const nonNegativeInt = () => z.int().min(0);

/**
 * Options for cross-field checks: run them only when the section parsed cleanly. A misspelt key leaves its field at
 * the default, and a rule comparing that default would only add a second, misleading complaint.
 */
export const whenSectionValid = {
  when: (payload: { issues: readonly unknown[] }) => payload.issues.length === 0,
};
