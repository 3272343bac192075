import type { BenchConfig } from "../loadgen/run-bench.ts";

/** A fixed-schedule streaming chat run against `url`, writing into `dir`, with the given changes. */
export function benchConfig(url: string, dir: string, o: Partial<BenchConfig> = {}): BenchConfig {
  return {
    url,
    endpoint: "chat",
    model: "m",
    streaming: true,
    rows: [],
    mode: { kind: "fixed", autoOffset: true },
    warmupCount: 0,
    gracePeriodS: 30,
    timeoutS: 30,
    extraInputs: {},
    headers: {},
    goodput: [],
    artifactDir: dir,
    useServerTokenCount: true,
    cliCommand: "test",
    inputConfig: {},
    ...o,
  };
}
