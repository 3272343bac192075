import { readdir, readFile, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ServelabError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import type { Recipe } from "../recipe/schema.ts";
import type { ManifestDoc, ManifestIssue } from "./manifest-doc.ts";
import { effectiveDeploy, fileText, type RenderOptions, renderRecipe } from "./render.ts";
import { parseManifests } from "./validate.ts";

/** servelab's own version, as rendered headers name it. */
export const SERVELAB_VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string })
  .version;

/** Renders the recipe and writes each file atomically under `outDir`; returns the paths written, in order. */
export async function writeRendered(
  recipe: Recipe,
  outDir: string,
  opts: RenderOptions = {},
): Promise<string[]> {
  const d = effectiveDeploy(recipe, opts);
  const files = renderRecipe(recipe, opts);
  const written: string[] = [];
  for (const f of files) {
    const path = join(outDir, ...f.path.split("/"));
    const text = fileText(f, {
      recipe: recipe.name,
      servelabVersion: SERVELAB_VERSION,
      dynamoVersion: d.dynamo_version,
    });
    try {
      await writeFileAtomic(path, [text]);
    } catch (e) {
      throw new ServelabError("FILE_WRITE", `cannot write ${path}: ${(e as Error).message}`);
    }
    written.push(path);
  }
  return written;
}

const YAML_FILE = /\.ya?ml$/;

async function yamlFilesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await yamlFilesUnder(p)));
    else if (e.isFile() && YAML_FILE.test(e.name)) out.push(p);
  }
  return out;
}

/** The YAML files named, directories searched recursively in name order. */
export async function manifestFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(p);
    } catch {
      throw new ServelabError("FILE_NOT_FOUND", `${p} does not exist`);
    }
    if (st.isDirectory()) {
      const found = await yamlFilesUnder(p);
      if (found.length === 0) throw new ServelabError("FILE_NOT_FOUND", `${p} holds no .yaml files`);
      files.push(...found);
    } else files.push(p);
  }
  return files;
}

/** Every document of the files, named by their path relative to `base` when inside it. */
export async function readManifests(
  files: readonly string[],
  base = process.cwd(),
): Promise<{ docs: ManifestDoc[]; issues: ManifestIssue[] }> {
  const docs: ManifestDoc[] = [];
  const issues: ManifestIssue[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      throw new ServelabError("FILE_READ", `cannot read ${file}: ${(e as Error).message}`);
    }
    const rel = relative(base, file);
    const name = rel.startsWith("..") ? file : rel.split(sep).join("/");
    const parsed = parseManifests(text, name);
    docs.push(...parsed.docs);
    issues.push(...parsed.issues);
  }
  return { docs, issues };
}

/** The manifests and README text of a Dynamo recipe directory. */
export async function readRecipeDir(dir: string): Promise<{ docs: ManifestDoc[]; readme: string }> {
  const files = await manifestFiles([dir]);
  const { docs, issues } = await readManifests(files);
  if (issues.length > 0)
    throw new ServelabError(
      "DEPLOY_IMPORT",
      `${dir}: ${issues.length} manifest(s) are not valid YAML`,
      issues.map((i) => `${i.doc}: ${i.message}`),
    );
  const readmes: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && /\.md$/i.test(e.name)) readmes.push(await readFile(p, "utf8"));
    }
  };
  await walk(dir);
  return { docs, readme: readmes.join("\n") };
}

/** The recipes shipped in the repository's `recipes/` directory, templates for models an import cannot describe. */
export const BUNDLED_RECIPES_DIR = fileURLToPath(new URL("../../recipes", import.meta.url));
