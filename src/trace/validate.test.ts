import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatTraceIssue, parseTraceLine } from "./validate.ts";

const good = { timestamp: 0, input_length: 1000, output_length: 10, hash_ids: [0, 1] };
const line = (o: object) => JSON.stringify(o);

function issuesOf(text: string, opts = {}) {
  const r = parseTraceLine(text, 7, opts);
  assert.equal(r.ok, false, "expected the line to be rejected");
  return r.ok ? [] : r.issues;
}

describe("parseTraceLine", () => {
  it("accepts a valid Mooncake row with optional fields", () => {
    const r = parseTraceLine(
      line({ ...good, session_id: "s1", delay: 5, context_len: 512, unique_user_prompt_len: 488 }),
      1,
    );
    assert.equal(r.ok, true);
    if (r.ok) assert.deepEqual(r.row.hash_ids, [0, 1]);
  });

  it("rejects malformed JSON naming the line", () => {
    const [issue] = issuesOf("{not json");
    assert.match(formatTraceIssue("t.jsonl", issue!), /^t\.jsonl:7: malformed JSON/);
  });

  it("rejects non-object JSON", () => {
    assert.match(issuesOf("[1,2]")[0]!.reason, /expected a JSON object/);
  });

  for (const field of ["input_length", "output_length", "hash_ids"]) {
    it(`reports a missing ${field}`, () => {
      const o: Record<string, unknown> = { ...good };
      delete o[field];
      const issues = issuesOf(line(o));
      assert.ok(
        issues.some((i) => i.field === field && i.reason === "is missing"),
        JSON.stringify(issues),
      );
    });
  }

  it("reports wrongly typed fields", () => {
    const issues = issuesOf(line({ ...good, timestamp: "0", output_length: "10" }));
    assert.deepEqual(
      issues.map((i) => i.field),
      ["timestamp", "output_length"],
    );
    assert.match(issues[0]!.reason, /finite number, got the string "0"/);
  });

  it("reports negative and non-integer lengths", () => {
    assert.match(issuesOf(line({ ...good, input_length: -5 }))[0]!.reason, /must not be negative/);
    assert.match(issuesOf(line({ ...good, output_length: 2.5 }))[0]!.reason, /must be an integer/);
    assert.match(
      issuesOf(line({ ...good, hash_ids: [0, -1] }))[0]!.reason,
      /element 1 must be a non-negative integer/,
    );
  });

  it("checks len(hash_ids) == ceil(input_length / block_size)", () => {
    const [issue] = issuesOf(line({ ...good, input_length: 1025 }));
    assert.equal(issue!.field, "hash_ids");
    assert.match(issue!.reason, /has 2 blocks but input_length 1025 needs ceil\(1025\/512\) = 3/);
    assert.equal(parseTraceLine(line({ ...good, input_length: 1025 }), 1, { blockSize: 1024 }).ok, true);
  });

  it("rejects unknown fields but passes through later AIPerf fields", () => {
    assert.equal(issuesOf(line({ ...good, input_lenght: 3 }))[0]!.field, "input_lenght");
    assert.equal(parseTraceLine(line({ ...good, extra: { temperature: 0 } }), 1).ok, true);
  });

  it("accepts text_input rows without hash_ids", () => {
    assert.equal(parseTraceLine(line({ timestamp: 1, text_input: "hi", output_length: 3 }), 1).ok, true);
    assert.equal(issuesOf(line({ text_input: "hi", output_length: 3, hash_ids: [1] }))[0]!.field, "hash_ids");
  });

  it("checks context_len + unique_user_prompt_len == input_length", () => {
    assert.equal(
      issuesOf(line({ ...good, context_len: 512, unique_user_prompt_len: 1 }))[0]!.field,
      "unique_user_prompt_len",
    );
  });
});
