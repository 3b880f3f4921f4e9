// globMatch follows Redis's pattern rules: watch() uses it to filter the changes it replays from the
// journal the same way the broker filters the live pattern subscription.
import { test } from "node:test";
import assert from "node:assert/strict";
import { globMatch } from "../herald.js";

test("globMatch: Redis's glob rules", () => {
  const cases = [
    // Redis's stringmatchlen never matches an empty text (the broker's KEYS * has its own shortcut).
    ["*", "", false],
    ["*", "anything", true],
    ["task:*", "task:1", true],
    ["task:*", "tasks", false],
    ["h?llo", "hello", true],
    ["h?llo", "hllo", false],
    ["h[ae]llo", "hallo", true],
    ["h[ae]llo", "hillo", false],
    ["h[^e]llo", "hallo", true],
    ["h[^e]llo", "hello", false],
    ["h[a-c]llo", "hbllo", true],
    ["h[c-a]llo", "hbllo", true],
    ["h[a-c]llo", "hdllo", false],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axb", false],
    ["[\\]]", "]", true],
    ["*.log", "app.log", true],
    ["*a*b", "xxaxxb", true],
    ["*a*b", "xxaxxc", false],
    // Bytes, not characters, as the broker and Redis match: é is two bytes in UTF-8.
    ["caf?", "café", false],
    ["caf??", "café", true],
    [Uint8Array.of(0x63, 0x61, 0x66, 0xc3, 0x2a), "café", true], // é's first byte, then anything
    ["caf*", "café", true],
    ["[à-ü]", "é", false],
    ["h[^e]llo", "h\u00e9llo", false],
    ["h[^e]?llo", "h\u00e9llo", true],
    ["a[", "a[", false],
    ["a[b", "ab", true],
    ["a*a*a*a*a*a*a*a*b", "a".repeat(60), false],
  ];
  for (const [pattern, text, expected] of cases) {
    assert.equal(globMatch(pattern, text), expected, `${pattern} ~ ${text}`);
  }
});
