import { access } from "node:fs/promises";
import { ServelabError } from "../errors.ts";
import { findExportFiles } from "../io/export-files.ts";
import { PROFILE_EXPORT_JSONL } from "../metrics/exporters.ts";
import type { ArtifactTarget, Backend } from "./backend.ts";

/**
 * Artifacts already on disk as a backend (a run made earlier, by servelab or by AIPerf, or copied back from a
 * cluster): it runs nothing, and checks that each requested directory holds the records a report reads.
 */
export function artifactsBackend(): Backend<ArtifactTarget> {
  return {
    kind: "artifacts",
    async run(requests, hooks) {
      for (const req of requests) {
        const { jsonl } = await findExportFiles(req.dir);
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
