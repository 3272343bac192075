import type { Command } from "@commander-js/extra-typings";
import { loadRecipe, resolvedRecipeJson, resolvedRecipeYaml } from "../recipe/load.ts";
import { armWorkerGroups } from "../recipe/schema.ts";

export function registerRecipeCommands(program: Command): void {
  const recipe = program.command("recipe").description("check and inspect experiment recipes");

  recipe
    .command("validate")
    .description("check a recipe against the schema and its cross-field rules")
    .argument("<file>", "recipe YAML")
    .option("--perf-model <name>", "the step-time model the simulator would run (see servelab sim)", "auto")
    .action(async (file, o) => {
      const r = await loadRecipe(file);
      const arms = Object.keys(r.arms);
      const noun = arms.length === 1 ? "arm" : "arms";
      process.stdout.write(`ok: ${file} (recipe ${r.name}, ${arms.length} ${noun}: ${arms.join(", ")})\n`);
      for (const [arm, a] of Object.entries(r.arms))
        for (const { role, group } of armWorkerGroups(a)) {
          const kept = Object.keys(group.engine.not_modelled ?? {});
          if (kept.length > 0)
            process.stdout.write(
              `note: ${arm}/${role}: TensorRT-LLM options kept but not modelled by the simulator: ${kept.join(", ")}\n`,
            );
        }
      const { describePerfModels, uncalibratedWarning } = await import("../engine/perf-models.ts");
      const d = describePerfModels(o.perfModel, r);
      for (const [arm, roles] of Object.entries(d.models))
        for (const [role, model] of Object.entries(roles))
          process.stdout.write(`step-time model ${arm}/${role}: ${model}\n`);
      if (!d.calibrated) process.stderr.write(uncalibratedWarning(d.models));
    });

  recipe
    .command("show")
    .description("print the recipe with every default filled in")
    .argument("<file>", "recipe YAML")
    .option("--json", "print JSON instead of YAML")
    .action(async (file, o) => {
      const r = await loadRecipe(file);
      process.stdout.write(o.json ? resolvedRecipeJson(r) : resolvedRecipeYaml(r));
    });
}
