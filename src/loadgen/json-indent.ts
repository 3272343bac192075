const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/**
 * `JSON.stringify(JSON.parse(text), null, 2)` for `text` that JSON.stringify wrote (compact: no whitespace outside
 * strings), each line after the first prefixed with `prefix` — without parsing: one pass over the bytes that
 * inserts line breaks and indentation, copying strings (a prompt is most of a body) in one piece. Building the
 * objects and strings of a parse would make a megabyte of garbage per long prompt. Structural characters are ASCII
 * and UTF-8 never uses ASCII bytes inside a multi-byte character, so scanning bytes is safe.
 */
export function indentCompactJson(text: Uint8Array, prefix = ""): Buffer {
  const out: Uint8Array[] = [];
  const breaks = new Map<number, Buffer>();
  const lineBreak = (depth: number) => {
    let b = breaks.get(depth);
    if (!b) {
      b = Buffer.from(`\n${prefix}${"  ".repeat(depth)}`);
      breaks.set(depth, b);
    }
    return b;
  };
  const colon = Buffer.from(": ");
  let depth = 0;
  let from = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text[i]!;
    if (c === QUOTE) {
      // Skip to the closing quote: a quote preceded by an odd number of backslashes is escaped.
      let j = i + 1;
      for (;;) {
        j = text.indexOf(QUOTE, j);
        if (j < 0) throw new SyntaxError("unterminated string in JSON text");
        let k = j - 1;
        while (text[k] === BACKSLASH) k--;
        if ((j - 1 - k) % 2 === 0) break;
        j++;
      }
      i = j;
      continue;
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const next = text[i + 1];
      if (next === CLOSE_OBJECT || next === CLOSE_ARRAY) {
        i++;
        continue;
      }
      out.push(text.subarray(from, i + 1), lineBreak(++depth));
      from = i + 1;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      out.push(text.subarray(from, i), lineBreak(--depth));
      from = i;
    } else if (c === COMMA) {
      out.push(text.subarray(from, i + 1), lineBreak(depth));
      from = i + 1;
    } else if (c === COLON) {
      out.push(text.subarray(from, i), colon);
      from = i + 1;
    }
  }
  out.push(text.subarray(from));
  return Buffer.concat(out);
}
