/*
 * The AIPerf command lines inside the perf Job's bash script: written by the renderer, read back by the importer.
 * A command is kept as its ordered flags, so two scripts compare equal when they run the same AIPerf invocations,
 * whatever their surrounding shell code.
 */

/** One flag and its value (`null` for a switch), in command-line order. */
export type AiperfFlag = readonly [flag: string, value: string | null];

/** AIPerf options that take no value. */
const SWITCHES = new Set([
  "--streaming",
  "--fixed-schedule",
  "--fixed-schedule-auto-offset",
  "--verbose",
  "-v",
]);

/** A word the shell reads back as itself: no quoting needed. */
const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Shell-quotes a word unless it is plain; `${VAR}` references stay expandable inside the double quotes. */
export function shellWord(word: string): string {
  if (word !== "" && PLAIN.test(word)) return word;
  return `"${word.replace(/(["\\`])/g, "\\$1")}"`;
}

/** `aiperf profile` with these flags, one flag per continuation line after the first. */
export function formatAiperfCommand(flags: readonly AiperfFlag[], trailing: readonly string[] = []): string {
  const parts = flags.map(([f, v]) => (v === null ? f : `${f} ${shellWord(v)}`));
  return ["aiperf profile", ...parts, ...trailing].join(" \\\n  ");
}

/** Splits a logical shell line into words: quotes removed, `$VAR` / `${VAR}` expanded from `env`. */
export function shellWords(line: string, env: Readonly<Record<string, string>>): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | null = null;
  const expand = (i: number): [string, number] => {
    const braced = line[i + 1] === "{";
    const m = braced
      ? /^\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}/.exec(line.slice(i))
      : /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(line.slice(i));
    if (!m) return ["$", i + 1];
    // Array expansions and defaults are left as written: they are shell plumbing, not AIPerf arguments.
    if (braced && m[2] !== "") return [m[0], i + m[0].length];
    // A script variable (not in the container's env) stays a reference, written one way whichever way it was.
    return [env[m[1]!] ?? `\${${m[1]}}`, i + m[0].length];
  };
  for (let i = 0; i < line.length; ) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else word += c;
      i++;
      continue;
    }
    if (c === "\\" && i + 1 < line.length) {
      word += line[i + 1];
      inWord = true;
      i += 2;
      continue;
    }
    if (c === "$") {
      const [text, next] = expand(i);
      word += text;
      inWord = true;
      i = next;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = null;
      else word += c;
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
      i++;
      continue;
    }
    if (c === " " || c === "\t") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
      continue;
    }
    if (c === "#" && !inWord) break;
    if (c === ";" || c === "|" || c === "&") {
      if (inWord) words.push(word);
      words.push(c);
      word = "";
      inWord = false;
      i++;
      continue;
    }
    word += c;
    inWord = true;
    i++;
  }
  if (inWord) words.push(word);
  return words;
}

/** The flags of every `aiperf profile` command in a script, in script order. */
export function aiperfCommands(script: string, env: Readonly<Record<string, string>>): AiperfFlag[][] {
  const logical = script.replace(/\\\n/g, " ").split("\n");
  const commands: AiperfFlag[][] = [];
  for (const line of logical) {
    const words = shellWords(line, env);
    const at = words.findIndex((w, i) => w === "aiperf" && words[i + 1] === "profile");
    if (at < 0) continue;
    const flags: AiperfFlag[] = [];
    for (let i = at + 2; i < words.length; i++) {
      const w = words[i]!;
      if (w === ";" || w === "|" || w === "&") break;
      if (!w.startsWith("-")) continue;
      if (SWITCHES.has(w) || i + 1 >= words.length) {
        flags.push([w, null]);
      } else {
        flags.push([w, words[i + 1]!]);
        i++;
      }
    }
    commands.push(flags);
  }
  return commands;
}

/** The value of the last occurrence of a flag (`undefined` when absent, `null` for a switch). */
export function flagValue(flags: readonly AiperfFlag[], ...names: string[]): string | null | undefined {
  let found: string | null | undefined;
  for (const [f, v] of flags) if (names.includes(f)) found = v;
  return found;
}

/** The values of a repeatable flag (`--extra-inputs`, `--server-metrics`). */
export function flagValues(flags: readonly AiperfFlag[], name: string): string[] {
  return flags.filter(([f, v]) => f === name && v !== null).map(([, v]) => v!);
}
