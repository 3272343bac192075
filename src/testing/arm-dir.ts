import { mkdir, writeFile } from "node:fs/promises";
import { formatRecordLine } from "../metrics/exporters.ts";
import type { RequestRecord } from "../metrics/record.ts";

/** Writes an artifact directory holding these records as `profile_export.jsonl` (and a summary, when given). */
export async function writeArmDir(
  dir: string,
  records: readonly RequestRecord[],
  summary?: Record<string, unknown>,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(`${dir}/profile_export.jsonl`, `${records.map((r) => formatRecordLine(r)).join("\n")}\n`);
  if (summary) await writeFile(`${dir}/profile_export_aiperf.json`, JSON.stringify(summary));
  return dir;
}
