// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are bash, whose ${VAR} references are meant literally
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  aiperfCommands,
  flagValue,
  flagValues,
  formatAiperfCommand,
  shellWord,
  shellWords,
} from "./aiperf-command.ts";

describe("AIPerf commands in a perf Job script", () => {
  it("splits shell words: quotes, escapes, env expansion, array plumbing left alone", () => {
    const env = { TRACE_FILE: "/t/a b.jsonl", T: "20000" };
    assert.deepEqual(shellWords(`x --input-file "$TRACE_FILE" --goodput 'a:1 b:2' --g "ttft:\${T}"`, env), [
      "x",
      "--input-file",
      "/t/a b.jsonl",
      "--goodput",
      "a:1 b:2",
      "--g",
      "ttft:20000",
    ]);
    assert.deepEqual(shellWords('echo "${ARR[@]}" $UNSET # comment', {}), ["echo", "${ARR[@]}", "${UNSET}"]);
    assert.deepEqual(shellWords("a; b | c", {}), ["a", ";", "b", "|", "c"]);
  });

  it("reads every aiperf profile invocation across continuation lines", () => {
    const script = [
      "set -e",
      "aiperf profile -m $M --streaming \\",
      "  --concurrency 4 --extra-inputs max_tokens:200 --extra-inputs ignore_eos:true",
      'echo done; aiperf profile --input-file "$F" --fixed-schedule --goodput "time_to_first_token:$T"',
    ].join("\n");
    const [warm, replay] = aiperfCommands(script, { M: "org/m", F: "/f.jsonl", T: "5" });
    assert.equal(flagValue(warm!, "-m"), "org/m");
    assert.equal(flagValue(warm!, "--streaming"), null);
    assert.equal(flagValue(warm!, "--concurrency"), "4");
    assert.deepEqual(flagValues(warm!, "--extra-inputs"), ["max_tokens:200", "ignore_eos:true"]);
    assert.equal(flagValue(replay!, "--input-file"), "/f.jsonl");
    assert.equal(flagValue(replay!, "--fixed-schedule"), null);
    assert.equal(flagValue(replay!, "--goodput"), "time_to_first_token:5");
    assert.equal(flagValue(replay!, "--missing"), undefined);
  });

  it("writes commands that read back to the same flags", () => {
    const flags = [
      ["--goodput", "time_to_first_token:${TTFT} inter_token_latency:50"],
      ["--streaming", null],
      ["--input-file", "${TRACE_FILE}"],
    ] as const;
    const text = formatAiperfCommand(flags);
    assert.match(text, /--input-file "\$\{TRACE_FILE\}"/);
    assert.deepEqual(aiperfCommands(text, { TTFT: "1", TRACE_FILE: "/x" }), [
      [
        ["--goodput", "time_to_first_token:1 inter_token_latency:50"],
        ["--streaming", null],
        ["--input-file", "/x"],
      ],
    ]);
    assert.equal(shellWord("plain-word_1.2:3"), "plain-word_1.2:3");
    assert.equal(shellWord('say "hi"'), '"say \\"hi\\""');
  });
});
