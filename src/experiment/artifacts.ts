import { access, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ServelabError } from "../errors.ts";
import { findExportFiles } from "../io/export-files.ts";
import { PROFILE_EXPORT_JSONL } from "../metrics/exporters.ts";
import type { ArtifactTarget, Backend } from "./backend.ts";

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** What the cluster perf Job wrote about its run (`<epoch>_<job-name>/input_config.json`). */
export interface ClusterRunInfo {
  /** The DynamoGraphDeployment measured. */
  deployment?: string;
  /** The recipe arm, when servelab rendered the Job. */
  arm?: string;
  recipe?: string;
}

/** An artifact directory as given, and where its AIPerf exports are. */
export interface ResolvedArtifactDir {
  dir: string;
  exportDir: string;
  /** Present for a run directory a cluster perf Job wrote. */
  run?: ClusterRunInfo;
}

/** The Job's own `input_config.json`, beside (not inside) AIPerf's export directory. */
const RUN_CONFIG = "input_config.json";

async function runInfo(file: string): Promise<ClusterRunInfo> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    throw new ServelabError("FILE_READ", `cannot read ${file}: ${(e as Error).message}`);
  }
  const o = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const pick = (k: string) => (typeof o[k] === "string" && o[k] !== "" ? { [k]: o[k] as string } : {});
  return { ...pick("deployment"), ...pick("arm"), ...pick("recipe") };
}

/**
 * Where a directory's records are: the directory itself (servelab's or AIPerf's artifact directory), or, for a run
 * directory the cluster perf Job wrote (`/model-cache/perf/<epoch>_<job-name>/`, copied back with `kubectl cp`),
 * the one subdirectory AIPerf exported into, with what the Job recorded about the run.
 */
export async function resolveArtifactDir(dir: string): Promise<ResolvedArtifactDir> {
  const own = await findExportFiles(dir);
  if (await exists(own.jsonl)) return { dir, exportDir: dir };
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const candidates: string[] = [];
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const sub = join(dir, e.name);
    if (await exists((await findExportFiles(sub)).jsonl)) candidates.push(sub);
  }
  if (candidates.length === 0 || !(await exists(join(dir, RUN_CONFIG)))) return { dir, exportDir: dir };
  if (candidates.length > 1)
    throw new ServelabError(
      "FILE_READ",
      `${dir} holds ${candidates.length} AIPerf export directories; name the one to report`,
      candidates,
    );
  return { dir, exportDir: candidates[0]!, run: await runInfo(join(dir, RUN_CONFIG)) };
}

/**
 * Artifacts already on disk as a backend (a run made earlier, by servelab or by AIPerf, or copied back from a
 * cluster): it runs nothing, and checks that each requested directory holds the records a report reads.
 */
export function artifactsBackend(): Backend<ArtifactTarget> {
  return {
    kind: "artifacts",
    async run(requests, hooks) {
      for (const req of requests) {
        const { exportDir } = await resolveArtifactDir(req.dir);
        const { jsonl } = await findExportFiles(exportDir);
        try {
          await access(jsonl);
        } catch {
          throw new ServelabError(
            "FILE_NOT_FOUND",
            `${req.label}: ${req.dir} holds no ${PROFILE_EXPORT_JSONL}`,
          );
        }
        hooks.onDone?.(req);
      }
    },
  };
}
