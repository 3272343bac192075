import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, it } from "node:test";
import { TokenizerLoader } from "@lenml/tokenizers";
import { createRng } from "../random.ts";
import { BYTE_LEVEL_CACHE_PATH, loadCorpus, shippedTokenizerFiles } from "./prompts.ts";

const { cacheByteLevelPieces } = createRequire(import.meta.url)(BYTE_LEVEL_CACHE_PATH) as {
  cacheByteLevelPieces(tokenizer: unknown): number;
};

type Lib = { encode(text: string, o: { add_special_tokens: boolean }): number[] };
const files = shippedTokenizerFiles();
const load = () =>
  TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(readFileSync(files.json, "utf8")),
    tokenizerConfig: JSON.parse(readFileSync(files.config, "utf8")),
  } as Parameters<typeof TokenizerLoader.fromPreTrained>[0]) as unknown as Lib;

/** Texts of every kind the byte-level mapping sees: prose, code, digits, CJK, emoji, odd whitespace, specials. */
function texts(corpus: string): string[] {
  const rng = createRng(7, "byte-level-cache");
  const alphabet = [
    ..."aé中文🙂 \t\n\r0123456789.,;:'\"(){}[]<>/\\|-_=+*&^%$#@!?~`ß",
    "\u00a0",
    "\u200b",
    "\ud800",
  ];
  const out = [
    "",
    " ",
    "   leading and trailing   ",
    "def f(x):\n\treturn x ** 2  # square\n",
    "<｜begin▁of▁sentence｜>hello<｜end▁of▁sentence｜>",
    "12345678901234567890 3.14159 1e-9",
    "数据并行的专家混合模型 🙂🙂 naïve café",
  ];
  for (let i = 0; i < 200; i++) {
    const len = 1 + rng.int(120);
    let s = "";
    for (let j = 0; j < len; j++) s += alphabet[rng.int(alphabet.length)];
    out.push(s);
  }
  for (let i = 0; i < 100; i++) {
    const at = rng.int(Math.max(1, corpus.length - 2000));
    out.push(corpus.slice(at, at + 1 + rng.int(2000)));
  }
  return out;
}

describe("byte-level piece cache", () => {
  it("encodes every text exactly as the library does, first time and cached", async () => {
    const plain = load();
    const cached = load();
    assert.equal(cacheByteLevelPieces(cached), 1);
    const corpus = await loadCorpus();
    const all = texts(corpus);
    for (const pass of [1, 2]) {
      for (const t of all) {
        assert.deepEqual(
          cached.encode(t, { add_special_tokens: false }),
          plain.encode(t, { add_special_tokens: false }),
          `pass ${pass}: ${JSON.stringify(t.slice(0, 80))}`,
        );
      }
    }
  });

  it("answers repeated pieces from the cache and leaves tokenizers without a byte-level step alone", () => {
    let calls = 0;
    const part = {
      byte_encoder: {},
      pre_tokenize_text: (text: string) => {
        calls++;
        return [text.toUpperCase()];
      },
    };
    const tok = { pre_tokenizer: { tokenizers: [{ pre_tokenize_text: () => [] }, part] } };
    assert.equal(cacheByteLevelPieces(tok), 1);
    const first = part.pre_tokenize_text("abc");
    first.push("mutated by the caller");
    assert.deepEqual(part.pre_tokenize_text("abc"), ["ABC"]);
    assert.equal(calls, 1);
    part.pre_tokenize_text("x".repeat(65));
    part.pre_tokenize_text("x".repeat(65));
    assert.equal(calls, 3, "long pieces are not cached");
    assert.equal(cacheByteLevelPieces({}), 0);
  });
});
