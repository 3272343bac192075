import assert from "node:assert/strict";
import { type ErrorCode, ServelabError } from "../errors.ts";

/** Asserts that `fn` throws a ServelabError with `code` whose message contains every fragment. */
export function assertServelabError(fn: () => unknown, code: ErrorCode, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServelabError, `expected a ServelabError, got ${String(e)}`);
    assert.equal(e.code, code);
    for (const f of fragments)
      assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${f}`);
    return true;
  });
}
