import { parsePrometheusText } from "../loadgen/server-metrics.ts";

/** What one DP rank of a live worker served, read from its vLLM metrics; the simulator's TargetStats layout. */
export interface LiveTarget {
  target: string;
  role: "aggregated" | "prefill" | "decode";
  requests: number;
  prompt_tokens: number;
  cached_tokens: number;
  hit_rate: number;
}

/**
 * Per-rank request counts and prefix-cache figures of a worker from its `/metrics` text (vLLM's
 * `vllm:request_success_total`, `vllm:prefix_cache_queries_total` and `…_hits_total`, all in tokens but the
 * first, labelled by `engine`, the DP rank).
 */
export function liveTargets(workerId: string, role: LiveTarget["role"], metricsText: string): LiveTarget[] {
  const series = parsePrometheusText(metricsText);
  const byRank = new Map<string, { requests: number; prompt: number; cached: number }>();
  const add = (name: string, field: "requests" | "prompt" | "cached") => {
    for (const s of series[name] ?? []) {
      if (!("value" in s)) continue;
      const rank = s.labels?.engine ?? "0";
      // The worker-wide queue is not a rank.
      if (!/^\d+$/.test(rank)) continue;
      const t = byRank.get(rank) ?? { requests: 0, prompt: 0, cached: 0 };
      t[field] += s.value;
      byRank.set(rank, t);
    }
  };
  add("vllm:request_success_total", "requests");
  add("vllm:prefix_cache_queries_total", "prompt");
  add("vllm:prefix_cache_hits_total", "cached");
  return [...byRank.entries()]
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([rank, t]) => ({
      target: `${workerId}/${rank}`,
      role,
      requests: t.requests,
      prompt_tokens: t.prompt,
      cached_tokens: t.cached,
      hit_rate: t.prompt === 0 ? 0 : t.cached / t.prompt,
    }));
}

/** The prefix hit rate over the ranks that prefill (decode ranks receive their prompts' KV). */
export function liveHitRate(targets: readonly LiveTarget[]): number {
  const served = targets.filter((t) => t.role !== "decode");
  const prompt = served.reduce((a, t) => a + t.prompt_tokens, 0);
  const cached = served.reduce((a, t) => a + t.cached_tokens, 0);
  return prompt === 0 ? 0 : cached / prompt;
}
