import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { indentCompactJson } from "./json-indent.ts";

function randomValue(rng: ReturnType<typeof createRng>, depth: number): unknown {
  const r = rng.next();
  if (depth > 3 || r < 0.3) {
    const pick = Math.floor(rng.next() * 6);
    const chars = ["a", '"', "\\", "\n", "é✓", ",:{}[]", '\\"', " "];
    if (pick === 0)
      return Array.from(
        { length: Math.floor(rng.next() * 6) },
        () => chars[Math.floor(rng.next() * chars.length)],
      ).join("");
    if (pick === 1) return Math.floor(rng.next() * 1e6) / 7;
    if (pick === 2) return rng.next() < 0.5;
    if (pick === 3) return null;
    if (pick === 4) return [];
    return {};
  }
  if (r < 0.65) return Array.from({ length: Math.floor(rng.next() * 4) }, () => randomValue(rng, depth + 1));
  return Object.fromEntries(
    Array.from({ length: Math.floor(rng.next() * 4) }, (_, i) => [`k${i}:"\\`, randomValue(rng, depth + 1)]),
  );
}

describe("indenting compact JSON without parsing it", () => {
  it("gives exactly JSON.stringify(value, null, 2), prefixed lines included", () => {
    const rng = createRng(5, "json-indent");
    for (let k = 0; k < 2000; k++) {
      const v = randomValue(rng, 0);
      const compact = Buffer.from(JSON.stringify(v));
      assert.equal(indentCompactJson(compact).toString(), JSON.stringify(v, null, 2), `case ${k}`);
      assert.equal(
        indentCompactJson(compact, "    ").toString(),
        JSON.stringify(v, null, 2).replaceAll("\n", "\n    "),
      );
    }
  });

  it("refuses a string that never ends", () => {
    assert.throws(() => indentCompactJson(Buffer.from('{"a":"b')), SyntaxError);
  });
});
