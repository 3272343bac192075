import { join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { ServelabError } from "../errors.ts";
import { DYNAMO_VERSIONS, type DynamoVersion } from "../recipe/deploy-schema.ts";
import { loadRecipe } from "../recipe/load.ts";
import { armGpuCount } from "../recipe/schema.ts";

const collect = (value: string, previous: string[] = []) => [...previous, value];

function dynamoVersion(text: string): DynamoVersion {
  if ((DYNAMO_VERSIONS as readonly string[]).includes(text)) return text as DynamoVersion;
  throw new InvalidArgumentError(`expected one of ${DYNAMO_VERSIONS.join(", ")}, got '${text}'.`);
}

function registerRender(deploy: Command): void {
  deploy
    .command("render")
    .description(
      "write the Kubernetes manifests (Dynamo graph deployments, engine ConfigMaps, Jobs) of a recipe's arms",
    )
    .argument("<recipe>", "recipe YAML")
    .option("--arm <name>", "render only this arm (repeatable)", collect)
    .option("--out <dir>", "output directory (default: results/deploy/<recipe name>)")
    .addOption(
      new Option("--dynamo-version <v>", "Dynamo release line the manifests target").argParser(dynamoVersion),
    )
    .option(
      "--namespace <ns>",
      "set metadata.namespace on every object (default: none, so kubectl -n decides)",
    )
    .option("--storage-class <name>", "storage class of the model-cache PVC (default: the recipe's)")
    .action(async (file, o) => {
      const recipe = await loadRecipe(file);
      const { writeRendered } = await import("../deploy/files.ts");
      const out = o.out ?? join("results", "deploy", recipe.name);
      const written = await writeRendered(recipe, out, {
        ...(o.arm ? { arms: o.arm } : {}),
        ...(o.dynamoVersion ? { dynamoVersion: o.dynamoVersion } : {}),
        ...(o.namespace ? { namespace: o.namespace } : {}),
        ...(o.storageClass ? { storageClass: o.storageClass } : {}),
      });
      for (const w of written) process.stdout.write(`wrote ${w}\n`);
      const [{ nextSteps }, { effectiveDeploy }, { traceFileName }, { TRACES_DIR }] = await Promise.all([
        import("../deploy/results.ts"),
        import("../deploy/render.ts"),
        import("../deploy/perf-job.ts"),
        import("../deploy/names.ts"),
      ]);
      const d = effectiveDeploy(recipe, o.namespace ? { namespace: o.namespace } : {});
      const steps = nextSteps(d, {
        out,
        recipeFile: file,
        traceName: traceFileName(recipe),
        traceDir: d.perf.trace_file
          ? d.perf.trace_file.slice(0, d.perf.trace_file.lastIndexOf("/"))
          : TRACES_DIR,
        arms: o.arm ?? Object.keys(recipe.arms),
      });
      process.stdout.write(
        `check them with: servelab deploy validate ${out} --recipe ${file}\nthen run, in order:\n${steps.map((l) => `  ${l}`).join("\n")}\n`,
      );
    });
}

function registerValidate(deploy: Command): void {
  deploy
    .command("validate")
    .description("check manifests offline: CRD and Kubernetes schemas, and the rules between objects")
    .argument("<paths...>", "manifest files, or directories searched for .yaml files")
    .addOption(
      new Option(
        "--dynamo-version <v>",
        "check custom resources against this release line's CRDs (default: 1.3 and 1.0)",
      ).argParser(dynamoVersion),
    )
    .option(
      "--recipe <file>",
      "the recipe the manifests were rendered from: check each arm's GPU count against it",
    )
    .option("--data-dir <dir>", "where the CRD files are looked up first")
    .action(async (paths, o) => {
      const [
        { loadCrdValidators },
        { manifestFiles, readManifests },
        { validateManifests },
        { deploymentName },
        render,
      ] = await Promise.all([
        import("../deploy/crds.ts"),
        import("../deploy/files.ts"),
        import("../deploy/validate.ts"),
        import("../deploy/names.ts"),
        import("../deploy/render.ts"),
      ]);
      const files = await manifestFiles(paths);
      const { docs, issues: parseIssues } = await readManifests(files);
      const versions: DynamoVersion[] = o.dynamoVersion ? [o.dynamoVersion] : [...DYNAMO_VERSIONS];
      const resolveOpts = o.dataDir === undefined ? {} : { dataDir: o.dataDir };
      const crds = new Map<DynamoVersion, Awaited<ReturnType<typeof loadCrdValidators>>>();
      for (const v of versions) crds.set(v, await loadCrdValidators(v, resolveOpts));
      let expectedGpus: Map<string, number> | undefined;
      if (o.recipe !== undefined) {
        const recipe = await loadRecipe(o.recipe);
        const d = render.effectiveDeploy(recipe);
        expectedGpus = new Map(
          Object.entries(recipe.arms).map(([name, arm]) => [
            deploymentName(name, d.name_suffix),
            armGpuCount(arm),
          ]),
        );
      }
      const issues = [
        ...parseIssues,
        ...validateManifests(docs, { crds, ...(expectedGpus ? { expectedGpus } : {}) }),
      ];
      if (issues.length > 0) {
        const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
        throw new ServelabError(
          "DEPLOY_INVALID",
          `${count} in ${docs.length} documents of ${files.length} files`,
          issues.map((i) => `${i.doc}: ${i.path}: [${i.rule}] ${i.message}`),
        );
      }
      process.stdout.write(
        `ok: ${docs.length} documents in ${files.length} files (schemas of Dynamo ${versions.join(" and ")}, cross-object rules)\n`,
      );
    });
}

function registerResults(deploy: Command): void {
  deploy
    .command("results")
    .description("print the kubectl commands that copy the perf Jobs' results off the model-cache volume")
    .argument("[recipe]", "recipe YAML (default: every perf Job's runs)")
    .option("--arm <name>", "only this arm (repeatable)", collect)
    .option("--namespace <ns>", "namespace the Jobs ran in")
    .option("--out <dir>", "local directory to copy the run directories into", join("results", "cluster"))
    .action(async (file, o) => {
      const [{ resultsCommands }, { effectiveDeploy }, { deploySettings }] = await Promise.all([
        import("../deploy/results.ts"),
        import("../deploy/render.ts"),
        import("../recipe/deploy-schema.ts"),
      ]);
      if (file === undefined && o.arm !== undefined)
        throw new ServelabError("USAGE", "--arm names an arm of a recipe; give the recipe too");
      const recipe = file === undefined ? undefined : await loadRecipe(file);
      for (const a of o.arm ?? [])
        if (recipe && !Object.hasOwn(recipe.arms, a))
          throw new ServelabError(
            "USAGE",
            `--arm ${a}: the recipe has no such arm; arms: ${Object.keys(recipe.arms).join(", ")}`,
          );
      const d = recipe
        ? effectiveDeploy(recipe, o.namespace ? { namespace: o.namespace } : {})
        : { ...deploySettings(undefined), ...(o.namespace ? { namespace: o.namespace } : {}) };
      const lines = resultsCommands(recipe, d, {
        out: o.out,
        ...(file === undefined ? {} : { recipeFile: file }),
        ...(o.arm ? { arms: o.arm } : {}),
      });
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

export function registerDeployCommands(program: Command): void {
  const deploy = program
    .command("deploy")
    .description("run a recipe on Kubernetes with Dynamo: render and validate manifests, fetch results");
  registerRender(deploy);
  registerValidate(deploy);
  registerResults(deploy);
}
