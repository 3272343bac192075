import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../random.ts";
import { HashTable } from "./hash-table.ts";

describe("HashTable", () => {
  for (const words of [2, 3] as const) {
    it(`agrees with a Map under random inserts and deletes (${words}-word keys)`, () => {
      const rng = createRng(words);
      const table = new HashTable(words, 4);
      const ref = new Map<string, number>();
      for (let i = 0; i < 20_000; i++) {
        // A small key space forces collisions, updates and deletes of present keys.
        const a = rng.int(300);
        const b = rng.int(3) * 0x7fffffff;
        const c = words === 3 ? rng.int(4) : 0;
        const key = `${a},${b},${c}`;
        const roll = rng.next();
        if (roll < 0.1) {
          const before = ref.get(key) ?? 0;
          // Reference counts: up from anything, down only from a positive count.
          const delta = before > 0 && rng.next() < 0.5 ? -1 : 1;
          assert.equal(table.adjust(a, b, c, delta), before + delta);
          if (before + delta === 0) ref.delete(key);
          else ref.set(key, before + delta);
        } else if (roll < 0.4) {
          assert.equal(table.delete(a, b, c), ref.get(key) ?? -1);
          ref.delete(key);
        } else {
          table.set(a, b, c, i);
          ref.set(key, i);
        }
        assert.equal(table.size, ref.size);
      }
      for (const [key, v] of ref) {
        const [a, b, c] = key.split(",").map(Number) as [number, number, number];
        assert.equal(table.get(a, b, c), v);
      }
      let visited = 0;
      table.forEach((a, b, c, v) => {
        visited++;
        assert.equal(ref.get(`${a},${b},${c}`), v);
      });
      assert.equal(visited, ref.size);
      assert.equal(table.get(1_000_000, 1), -1);
    });
  }

  it("refuses values it cannot store", () => {
    const table = new HashTable(2);
    assert.throws(() => table.set(1, 2, 0, 2 ** 31), RangeError);
    assert.throws(() => table.set(1, 2, 0, -1), RangeError);
    table.set(1, 2, 0, 2 ** 31 - 1);
    assert.equal(table.get(1, 2), 2 ** 31 - 1);
    assert.throws(() => table.adjust(1, 2, 0, 1), RangeError);
  });

  it("prefetches any keys, including the last slot's, without changing what it holds", () => {
    for (const words of [2, 3] as const) {
      const table = new HashTable(words, 8);
      const c = words === 3 ? 1 : 0;
      for (let i = 0; i < 10; i++) table.set(i, 0xffffffff - i, c, i);
      // Keys strided among other words, more of them than the scratch first holds, present and absent.
      const keys = new Uint32Array(3 * 200);
      for (let k = 0; k < 200; k++) {
        keys[3 * k + 1] = k % 20;
        keys[3 * k + 2] = 0xffffffff - (k % 20);
      }
      table.prefetch(keys, 1, 3, 200, c);
      table.prefetch(keys, 1, 3, 0, c);
      assert.equal(table.size, 10);
      for (let i = 0; i < 20; i++) assert.equal(table.get(i, 0xffffffff - i, c), i < 10 ? i : -1);
    }
  });

  it("shares its contents for reading elsewhere, and checks what it is given", () => {
    const table = new HashTable(3, 8);
    for (let i = 0; i < 100; i++) table.set(i, i * 7, i % 3, i);
    const shared = table.share();
    assert.ok(shared.slots.buffer instanceof SharedArrayBuffer);
    const copy = HashTable.fromShared(structuredClone(shared));
    assert.equal(copy.size, 100);
    for (let i = 0; i < 100; i++) assert.equal(copy.get(i, i * 7, i % 3), i);
    assert.equal(copy.get(1, 2, 3), -1);
    assert.throws(() => HashTable.fromShared({ ...shared, slots: shared.slots.subarray(4) }), /power-of-two/);
  });
});
