// globMatch follows Redis's pattern rules: watch() uses it to filter the changes it replays from the
// journal the same way the broker filters the live pattern subscription.
import { test } from "node:test";
import assert from "node:assert/strict";
import { globMatch } from "../herald.js";

test("globMatch: Redis's glob rules", () => {
  const cases = [
    ["*", "", true],
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
    ["caf?", "café", true],
  ];
  for (const [pattern, text, expected] of cases) {
    assert.equal(globMatch(pattern, text), expected, `${pattern} ~ ${text}`);
  }
});
