import { z } from "zod";

/**
 * A YAML mapping that rejects keys it does not know. A misspelt knob (`tokens_per_blok`) must fail loudly: silently
 * dropping it would run the experiment on a default the author never chose. The message lists the keys that are
 * allowed at that spot so the fix is visible without opening the schema.
 */
export function section<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const allowed = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `unknown key; allowed here: ${allowed}` : undefined,
  });
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
