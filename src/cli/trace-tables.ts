import Table from "cli-table3";
import type { Summary } from "../metrics/summary.ts";
import type { TraceAnalysis } from "../trace/analyze.ts";
import { TABLE_STYLE } from "./table-style.ts";

const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–");
const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
const num = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : "–");

function distributionRow(name: string, s: Summary): string[] {
  return [name, int(s.mean), int(s.min), int(s.p50), int(s.p90), int(s.p99), int(s.max)];
}

/** The human-readable form of `trace analyze`: an overview table and a length-distribution table. */
export function renderAnalysis(file: string, a: TraceAnalysis): string {
  const overview = new Table({ head: ["trace", file], ...TABLE_STYLE });
  overview.push(
    ["requests", int(a.requests)],
    ["span", `${num(a.duration_s, 1)} s (${num(a.duration_s / 60, 2)} min)`],
    ["arrival rate", `${num(a.arrival_rate_per_s, 3)} req/s`],
    ["input / output tokens", `${int(a.total_input_tokens)} / ${int(a.total_output_tokens)}`],
    [`blocks (${a.block_size} tokens)`, `${int(a.total_blocks)} total, ${int(a.unique_blocks)} unique`],
    ["block-level hit rate", pct(a.block_hit_rate)],
    ["token-level hit rate", pct(a.token_hit_rate)],
    ["mean per-request hit rate", pct(a.mean_request_hit_rate)],
    [`shared-prefix ratio (${a.shared_prefix_source.replace("_", " ")})`, pct(a.shared_prefix_ratio)],
  );
  for (const lru of a.lru) {
    overview.push([
      `LRU prefix cache ${int(lru.cache_tokens)} tokens (${int(lru.cache_blocks)} blocks)`,
      `${pct(lru.block_hit_rate)} blocks, ${pct(lru.token_hit_rate)} tokens`,
    ]);
  }
  const lengths = new Table({ head: ["tokens", "mean", "min", "p50", "p90", "p99", "max"], ...TABLE_STYLE });
  lengths.push(distributionRow("input (ISL)", a.isl), distributionRow("output (OSL)", a.osl));
  if (a.context_len) lengths.push(distributionRow("shared context", a.context_len));
  if (a.unique_user_prompt_len) lengths.push(distributionRow("unique prompt", a.unique_user_prompt_len));
  return `${overview.toString()}\n${lengths.toString()}\n`;
}
