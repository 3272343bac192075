import { readdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
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
    .command("import")
    .description(
      "write a recipe from a Dynamo recipe directory (deploy.yaml per arm, engine ConfigMaps, perf.yaml Jobs)",
    )
    .argument("<dir>", "the Dynamo recipe directory, searched recursively for .yaml files")
    .option("--out <file>", "where the recipe goes (default: standard output)")
    .option("--name <name>", "the recipe's name (default: the directory's name)")
    .option(
      "--model-from <recipe>",
      "a recipe whose model section describes the served model (default: the bundled recipes')",
    )
    .action(async (dir, o) => {
      const [{ readRecipeDir, BUNDLED_RECIPES_DIR }, { importDynamoRecipe }] = await Promise.all([
        import("../deploy/files.ts"),
        import("../deploy/import.ts"),
      ]);
      const { docs, readme } = await readRecipeDir(dir);
      const templates = [];
      if (o.modelFrom !== undefined) templates.push(await loadRecipe(o.modelFrom));
      else
        for (const f of (await readdir(BUNDLED_RECIPES_DIR).catch(() => [] as string[])).sort())
          if (/\.ya?ml$/.test(f)) templates.push(await loadRecipe(join(BUNDLED_RECIPES_DIR, f)));
      const name = o.name ?? basename(resolve(dir));
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
        throw new ServelabError(
          "USAGE",
          `--name ${JSON.stringify(name)}: use letters, digits, '.', '-' and '_'`,
        );
      const result = importDynamoRecipe({ docs, readme, templates, name });
      for (const n of result.notes) process.stderr.write(`note: ${n}\n`);
      if (o.out === undefined) {
        process.stdout.write(result.yaml);
        return;
      }
      try {
        await writeFileAtomic(o.out, [result.yaml]);
      } catch (e) {
        throw new ServelabError("FILE_WRITE", `cannot write ${o.out}: ${(e as Error).message}`);
      }
      process.stdout.write(`wrote ${o.out} (${Object.keys(result.recipe.arms as object).length} arms)\n`);
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
