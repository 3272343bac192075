import { createReadStream } from "node:fs";
import { access, readdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Transform } from "node:stream";
import { Decompress } from "fzstd";
import { ServelabError } from "../errors.ts";
import { PROFILE_EXPORT_JSON, PROFILE_EXPORT_JSONL } from "../metrics/exporters.ts";

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

const ZST = ".zst";

/** Files AIPerf writes beside its records that are not records themselves. */
const NOT_RECORDS =
  /(^inputs\.json$|_raw\.jsonl$|^server_metrics_export|gpu_telemetry|^profile_export_aiperf)/;

/** `name` or, when only that is there, `name.zst`; `name` when neither is (the caller reports it missing). */
async function plainOrZst(file: string): Promise<string> {
  if (await exists(file)) return file;
  if (await exists(`${file}${ZST}`)) return `${file}${ZST}`;
  return file;
}

/**
 * An artifact directory's records and summary: AIPerf's default names (`profile_export.jsonl`,
 * `profile_export_aiperf.json`), else the one `<stem>.jsonl` that `--profile-export-prefix <stem>` wrote with its
 * `<stem>.json` beside it. Each may instead be zstd-compressed (`….zst`); read them with readExportLines and
 * readExportText, which decompress as they read.
 */
export async function findExportFiles(dir: string): Promise<{ jsonl: string; summary: string }> {
  const summary = await plainOrZst(join(dir, PROFILE_EXPORT_JSON));
  const jsonl = await plainOrZst(join(dir, PROFILE_EXPORT_JSONL));
  if (await exists(jsonl)) return { jsonl, summary };
  const names = await readdir(dir).catch(() => [] as string[]);
  const has = new Set(names);
  const stems = names
    .map((n) => (n.endsWith(ZST) ? n.slice(0, -ZST.length) : n))
    .filter((n) => n.endsWith(".jsonl") && !NOT_RECORDS.test(n))
    .map((n) => n.slice(0, -".jsonl".length))
    .filter((stem) => has.has(`${stem}.json`) || has.has(`${stem}.json${ZST}`));
  const unique = [...new Set(stems)];
  if (unique.length === 1) {
    const stem = unique[0]!;
    return {
      jsonl: await plainOrZst(join(dir, `${stem}.jsonl`)),
      summary: await plainOrZst(join(dir, `${stem}.json`)),
    };
  }
  return { jsonl, summary };
}

export const isZstd = (file: string): boolean => file.endsWith(ZST);

const unreadable = (file: string, e: unknown) =>
  new ServelabError(
    "FILE_READ",
    `${file} is zstd-compressed but could not be decompressed (${(e as Error).message || "invalid zstd data"})`,
    [`check it with: zstd -t ${file}`],
  );

/**
 * The file's bytes, decompressed chunk by chunk when it is zstd (so a large export never sits in memory whole). A
 * truncated or corrupt file fails the stream with FILE_READ.
 */
export function openExport(file: string): NodeJS.ReadableStream {
  const input = createReadStream(file);
  if (!isZstd(file)) return input;
  let out: Transform;
  const zstd = new Decompress((chunk) => {
    // The decoder may reuse its window buffer: copy before handing the bytes on.
    if (chunk.length > 0) out.push(Buffer.from(chunk));
  });
  let seen = 0;
  out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      try {
        zstd.push(chunk);
        done();
      } catch (e) {
        done(unreadable(file, e));
      }
    },
    flush(done) {
      if (seen === 0) return done(unreadable(file, new Error("empty file")));
      try {
        zstd.push(new Uint8Array(0), true);
        done();
      } catch (e) {
        done(unreadable(file, e));
      }
    },
  });
  input.on("error", (e) => out.destroy(e));
  return input.pipe(out);
}

/** The file's lines (decompressed when zstd), as a stream: for a records export of any size. */
export async function* readExportLines(file: string): AsyncGenerator<string> {
  yield* createInterface({ input: openExport(file), crlfDelay: Number.POSITIVE_INFINITY });
}

/** The whole file as text (decompressed when zstd): for a summary. */
export async function readExportText(file: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of openExport(file)) parts.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(parts).toString("utf8");
}
