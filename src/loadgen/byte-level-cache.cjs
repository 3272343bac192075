// Plain CommonJS so that the tokenizer threads, which run without a TypeScript loader, can require it too.
"use strict";

/** Pieces longer than this are mapped without caching: they rarely repeat and would fill the cache. */
const MAX_CACHED_PIECE = 64;
/** Distinct pieces kept before the cache starts over, which bounds its memory at a few MB. */
const CAPACITY = 65536;

/**
 * Caches the byte-level pre-tokenizer's output per input piece. transformers.js-style tokenizers map every
 * pre-token to byte-level characters with a TextEncoder and a per-byte Array.from on each call, two thirds of the
 * time of encoding English or code, although the pieces repeat from prompt to prompt. The mapping is a pure
 * function of the piece, so its cached answer is the same answer; a test checks encodings equal to the library's.
 * Returns how many pre-tokenizers it wrapped (0 when the tokenizer has no byte-level one).
 */
function cacheByteLevelPieces(tokenizer) {
  const top = tokenizer?.pre_tokenizer;
  const parts = top ? (Array.isArray(top.tokenizers) ? top.tokenizers : [top]) : [];
  let wrapped = 0;
  for (const part of parts) {
    if (!part?.byte_encoder || typeof part.pre_tokenize_text !== "function") continue;
    const original = part.pre_tokenize_text.bind(part);
    const cache = new Map();
    part.pre_tokenize_text = (text, options) => {
      if (typeof text !== "string" || text.length > MAX_CACHED_PIECE) return original(text, options);
      let pieces = cache.get(text);
      if (pieces === undefined) {
        pieces = original(text, options);
        if (cache.size >= CAPACITY) cache.clear();
        cache.set(text, pieces);
      }
      // A copy: the caller owns what it is given.
      return pieces.slice();
    };
    wrapped++;
  }
  return wrapped;
}

module.exports = { cacheByteLevelPieces };
