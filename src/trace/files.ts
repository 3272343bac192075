import { type AnalyzeOptions, analyzeRows, type TraceAnalysis, TraceAnalyzer } from "./analyze.ts";
import { type ReadOptions, readTrace, streamTrace } from "./reader.ts";
import { type SynthesisResult, synthesizeTrace } from "./synthesize.ts";
import type { SynthesisOptions } from "./types.ts";
import { writeTrace } from "./writer.ts";

export interface FileOptions {
  /** Accept out-of-order timestamps (sorted in memory, with a warning) instead of rejecting them. */
  sort?: boolean;
  onWarning?: (message: string) => void;
  onBytes?: ReadOptions["onBytes"];
}

/**
 * Analyzes a trace file by streaming it (twice when the prefix-analyzer rule needs the ids' global counts), so
 * memory follows the number of distinct blocks rather than the file size. `sort` reads it into memory instead.
 */
export async function analyzeTraceFile(
  file: string,
  opts: AnalyzeOptions & FileOptions = {},
): Promise<TraceAnalysis> {
  const analyzer = new TraceAnalyzer(opts);
  const read = { blockSize: analyzer.blockSize, ...(opts.onBytes ? { onBytes: opts.onBytes } : {}) };
  if (opts.sort) {
    const rows = await readTrace(file, {
      ...read,
      sort: true,
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    });
    return analyzeRows(rows, opts);
  }
  for await (const { row } of streamTrace(file, read)) analyzer.add(row);
  if (analyzer.needsSecondPass) {
    for await (const { row } of streamTrace(file, read)) analyzer.addSecondPass(row);
  }
  return analyzer.finish();
}

/** Reads an input trace, synthesizes from it and writes the result atomically to `output`. */
export async function synthesizeTraceFile(
  input: string,
  output: string,
  options: SynthesisOptions,
  opts: FileOptions & { onProgress?: (done: number, total: number) => void } = {},
): Promise<SynthesisResult> {
  const rows = await readTrace(input, {
    blockSize: options.blockSize,
    sort: opts.sort === true,
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
  });
  const result = synthesizeTrace(rows, options, opts.onProgress);
  await writeTrace(output, result.rows);
  return result;
}
