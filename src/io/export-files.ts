import { access, readdir } from "node:fs/promises";
import { join } from "node:path";
import { ServelabError } from "../errors.ts";
import { PROFILE_EXPORT_JSON, PROFILE_EXPORT_JSONL } from "../metrics/exporters.ts";

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** Files AIPerf writes beside its records that are not records themselves. */
const NOT_RECORDS =
  /(^inputs\.json$|_raw\.jsonl$|^server_metrics_export|gpu_telemetry|^profile_export_aiperf)/;

/**
 * An artifact directory's records and summary: AIPerf's default names (`profile_export.jsonl`,
 * `profile_export_aiperf.json`), else the one `<stem>.jsonl` that `--profile-export-prefix <stem>` wrote with its
 * `<stem>.json` beside it. A zstd-compressed export is named as such, to be decompressed first.
 */
export async function findExportFiles(dir: string): Promise<{ jsonl: string; summary: string }> {
  const jsonl = join(dir, PROFILE_EXPORT_JSONL);
  if (await exists(jsonl)) return { jsonl, summary: join(dir, PROFILE_EXPORT_JSON) };
  const names = await readdir(dir).catch(() => [] as string[]);
  const compressed = names.find((n) => n.endsWith(".jsonl.zst"));
  if (compressed)
    throw new ServelabError("FILE_READ", `${join(dir, compressed)} is zstd-compressed`, [
      `decompress it first: zstd -d ${join(dir, compressed)}`,
    ]);
  const stems = names
    .filter((n) => n.endsWith(".jsonl") && !NOT_RECORDS.test(n))
    .map((n) => n.slice(0, -".jsonl".length))
    .filter((stem) => names.includes(`${stem}.json`));
  if (stems.length === 1)
    return { jsonl: join(dir, `${stems[0]}.jsonl`), summary: join(dir, `${stems[0]}.json`) };
  return { jsonl, summary: join(dir, PROFILE_EXPORT_JSON) };
}
