import assert from "node:assert/strict";
import { createRedactor } from "../../src/log/redact.ts";

Deno.test("redact: replaces every occurrence, longest secret first", () => {
  const redact = createRedactor(["secret", "secret-longer"]);
  assert.equal(redact("a secret-longer b secret c"), "a <redacted> b <redacted> c");
});

Deno.test("redact: ignores short and empty values; identity without secrets", () => {
  assert.equal(createRedactor(["", "ab", "abc"])("ab abc"), "ab abc");
  assert.equal(createRedactor([])("text"), "text");
  assert.equal(createRedactor(["abcd"])("xabcdx"), "x<redacted>x");
});
