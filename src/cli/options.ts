import { InvalidArgumentError } from "@commander-js/extra-typings";

const SUFFIX: Record<string, number> = { "": 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 };

/** Parses `12`, `2.5`, `1e6` or with a decimal suffix (`10k`, `2.6M`, `1G`). */
export function parseQuantity(text: string): number {
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*([kKmMgG]?)\s*$/i.exec(text);
  if (!m) return Number.NaN;
  return Number(m[1]) * SUFFIX[m[2] ?? ""]!;
}

export function intOption(min: number): (text: string) => number {
  return (text) => {
    const v = parseQuantity(text);
    if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`expected an integer, got '${text}'.`);
    if (v < min) throw new InvalidArgumentError(`must be at least ${min}, got ${v}.`);
    return v;
  };
}

export function positiveNumberOption(text: string): number {
  const v = parseQuantity(text);
  if (!Number.isFinite(v) || v <= 0)
    throw new InvalidArgumentError(`expected a positive number, got '${text}'.`);
  return v;
}

/** A comma-separated list of positive sizes, e.g. `1M,2.6M,25.6M`. */
export function positiveListOption(text: string): number[] {
  const parts = text.split(",").filter((p) => p.trim() !== "");
  if (parts.length === 0) throw new InvalidArgumentError("expected a comma-separated list of sizes.");
  return parts.map((p) => {
    const v = parseQuantity(p);
    if (!Number.isFinite(v) || v <= 0)
      throw new InvalidArgumentError(`'${p.trim()}' is not a positive size.`);
    return v;
  });
}

export function portOption(text: string): number {
  const port = intOption(0)(text);
  if (port > 65535) throw new InvalidArgumentError(`a port is at most 65535, got ${port}.`);
  return port;
}

export function hostOption(text: string): string {
  if (text.trim() === "") throw new InvalidArgumentError("expected a host name or address.");
  return text.trim();
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
