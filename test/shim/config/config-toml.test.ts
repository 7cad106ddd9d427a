import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { parseToml, TomlSyntaxError } from "../../../src/shim/config/toml.js";

const values = (text: string) => Object.fromEntries([...parseToml(text)].map(([k, e]) => [k, e.value]));

function refuses(text: string, line: number, message: RegExp): void {
  assert.throws(() => parseToml(text), (err: unknown) => {
    assert.ok(err instanceof TomlSyntaxError, String(err));
    assert.equal(err.line, line, err.message);
    assert.match(err.message, message);
    return true;
  });
}

void suite("parseToml", () => {
  void test("reads strings, integers, booleans and arrays, with comments and blank lines", () => {
    const text = [
      "# the shim's settings",
      "",
      'runtime = "/usr/local/bin/runc-wrap"   # a wrapper',
      "grouping='namespace'",
      "  log_level\t=\t\"debug\"",
      "IoUid = 1_000",
      "IoGid = -7",
      "zero = +0",
      "NoPivotRoot = true",
      "NoNewKeyring = false",
      'runtime_flags = ["--max-old-space-size=32", \'--lite-mode\',]',
      '"quoted key" = "x"',
      "empty = []",
    ].join("\n");
    assert.deepEqual(values(text), {
      runtime: "/usr/local/bin/runc-wrap",
      grouping: "namespace",
      log_level: "debug",
      IoUid: 1000,
      IoGid: -7,
      zero: 0,
      NoPivotRoot: true,
      NoNewKeyring: false,
      runtime_flags: ["--max-old-space-size=32", "--lite-mode"],
      "quoted key": "x",
      empty: [],
    });
  });

  void test("reads an array over several lines with comments, and CRLF line ends", () => {
    const text = 'a = [\r\n  "x", # first\r\n  # between\r\n  "y"\r\n]\r\nb = 1\r\n';
    const parsed = parseToml(text);
    assert.deepEqual(parsed.get("a"), { value: ["x", "y"], line: 1 });
    assert.deepEqual(parsed.get("b"), { value: 1, line: 6 });
  });

  void test("decodes the escapes of basic strings and leaves literal strings alone", () => {
    assert.deepEqual(values(String.raw`a = "q\"b\\t\tn\nu\u00e9U\U0001F600"` + "\n" + String.raw`b = 'C:\path\n'`), {
      a: 'q"b\\t\tn\nu\u00e9U\u{1F600}',
      b: String.raw`C:\path\n`,
    });
  });

  void test("accepts an empty file and one without a final newline", () => {
    assert.equal(parseToml("").size, 0);
    assert.equal(parseToml("# only a comment").size, 0);
    assert.deepEqual(values("a = 1"), { a: 1 });
  });

  void test("refuses tables, dotted keys and inline tables, with the line", () => {
    refuses('a = 1\n[options]\nb = 2\n', 2, /tables are not supported/);
    refuses('\n\nx.y = 1\n', 3, /dotted keys are not supported \(key "x"\)/);
    refuses("a = { b = 1 }\n", 1, /inline tables are not supported \(key "a"\)/);
  });

  void test("refuses floats, dates, bare words and numbers TOML does not allow", () => {
    refuses("a = 1.5\n", 1, /unsupported value 1\.5 for key "a"/);
    refuses("a = 2024-01-01\n", 1, /unsupported value 2024-01-01/);
    refuses("a = debug\n", 1, /unsupported value debug for key "a": use a "string"/);
    refuses("a = 012\n", 1, /unsupported value 012/);
    refuses("a = 1__0\n", 1, /unsupported value 1__0/);
    refuses("a = 0x10\n", 1, /unsupported value 0x10/);
    refuses("a = 99999999999999999999\n", 1, /integer 99999999999999999999 of key "a" is too large/);
  });

  void test("refuses a missing value, a missing =, a repeated key and trailing text", () => {
    refuses("a =\n", 1, /expected a value for key "a", found the end of the line/);
    refuses("a = ", 1, /expected a value for key "a", found the end of the file/);
    refuses("a 1\n", 1, /expected "=" after key "a", found "1"/);
    refuses("= 1\n", 1, /expected a key, found "="/);
    refuses('a = 1\nb = 2\na = 3\n', 3, /key "a" is set twice \(first on line 1\)/);
    refuses('a = "x" "y"\n', 1, /expected the end of the line after the value, found "\\""/);
  });

  void test("refuses unterminated and multi-line strings and bad escapes", () => {
    refuses('a = "open\nb = 1\n', 1, /unterminated string/);
    refuses("a = 'open\n", 1, /unterminated string/);
    refuses('a = """x"""\n', 1, /multi-line strings are not supported/);
    refuses("a = '''x'''\n", 1, /multi-line strings are not supported/);
    refuses(String.raw`a = "\x"`, 1, /invalid escape "\\x"/);
    refuses(String.raw`a = "\u12"`, 1, /invalid unicode escape "12"/);
    refuses(String.raw`a = "\uD800"`, 1, /invalid unicode escape "D800"/);
  });

  void test("refuses broken and nested arrays", () => {
    refuses('a = ["x" "y"]\n', 1, /expected "," or "\]" in the array of key "a", found "\\""/);
    refuses('a = ["x",\n', 2, /expected a value for key "a", found the end of the file/);
    refuses("a = [[1]]\n", 1, /nested arrays are not supported/);
    refuses("a = [1.5]\n", 1, /unsupported value 1\.5/);
  });
});
