import { ServelabError } from "../errors.ts";
import type { Arm, Recipe } from "./schema.ts";

/** The arm a command names with `--arm`, or the recipe's only arm; USAGE naming the arms otherwise. */
export function pickArm(recipe: Recipe, name: string | undefined): { name: string; arm: Arm } {
  const names = Object.keys(recipe.arms);
  const armName = name ?? (names.length === 1 ? names[0]! : undefined);
  if (armName === undefined)
    throw new ServelabError(
      "USAGE",
      `recipe ${recipe.name} has arms ${names.join(", ")}: choose one with --arm`,
    );
  const arm = recipe.arms[armName];
  if (!arm)
    throw new ServelabError(
      "USAGE",
      `recipe ${recipe.name} has no arm "${armName}"; arms: ${names.join(", ")}`,
    );
  return { name: armName, arm };
}
