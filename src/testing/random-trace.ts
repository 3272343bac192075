import { createRng } from "../random.ts";
import type { TraceRow } from "../trace/types.ts";

/**
 * A small random Mooncake-style trace with real prefix structure: a few system prompts, conversations whose
 * context grows turn by turn, a fresh unique suffix per request, bursts of simultaneous arrivals.
 */
export function randomTrace(seed: number, requests: number, blockSize = 512): TraceRow[] {
  const rng = createRng(seed, "random-trace");
  let nextId = 0;
  const systemPrompts = Array.from({ length: 1 + rng.int(3) }, () =>
    Array.from({ length: 1 + rng.int(3) }, () => nextId++),
  );
  const conversations: number[][] = [];
  const rows: TraceRow[] = [];
  let t = 0;
  for (let i = 0; i < requests; i++) {
    let context: number[];
    if (conversations.length === 0 || rng.next() < 0.3) {
      context = [...systemPrompts[rng.int(systemPrompts.length)]!];
      conversations.push(context);
    } else {
      context = conversations[rng.int(conversations.length)]!;
    }
    const suffix = Array.from({ length: 1 + rng.int(4) }, () => nextId++);
    const ids = [...context, ...suffix];
    // The conversation's next turn sees this turn as context.
    context.push(...suffix);
    rows.push({
      timestamp: t,
      input_length: ids.length * blockSize - rng.int(blockSize),
      output_length: 1 + rng.int(500),
      hash_ids: ids,
    });
    if (rng.next() < 0.7) t += 1 + rng.int(2000);
  }
  return rows;
}
