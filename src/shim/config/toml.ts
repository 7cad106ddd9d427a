/**
 * A strict parser for the TOML subset the shim config file uses: `key = value` lines at top level, where a
 * value is a string (basic `"..."` with escapes, or literal `'...'`), an integer, a boolean, or an array
 * of those (which may span lines); `#` comments anywhere a comment may be. Everything else TOML has
 * (tables, dotted keys, floats, dates, inline tables, multi-line strings) is refused with the line and
 * what was found, never skipped: a file the shim reads wrongly is worse than one it refuses.
 */

/** A value of the subset. */
export type TomlScalar = string | number | boolean;
export type TomlValue = TomlScalar | TomlScalar[];

/** A key's value and the 1-based line it is on. */
export interface TomlEntry {
  value: TomlValue;
  line: number;
}

/** A syntax error; `message` has no line, `line` is 1-based. */
export class TomlSyntaxError extends Error {
  override name = "TomlSyntaxError";
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

const BARE_KEY = /[A-Za-z0-9_-]/;
const ESCAPES: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\" };

/** Parses `text`. Keys keep their order; a repeated key is an error. */
export function parseToml(text: string): Map<string, TomlEntry> {
  return new Parser(text).document();
}

class Parser {
  private pos = 0;
  private line = 1;

  constructor(private readonly s: string) {}

  document(): Map<string, TomlEntry> {
    const out = new Map<string, TomlEntry>();
    for (;;) {
      this.skipBlankLines();
      if (this.pos >= this.s.length) return out;
      const line = this.line;
      if (this.peek() === "[") throw this.fail("tables are not supported: write every key at top level");
      const key = this.key();
      this.spaces();
      if (this.peek() === ".") throw this.fail(`dotted keys are not supported (key "${key}")`);
      if (this.peek() !== "=") throw this.fail(`expected "=" after key "${key}", found ${this.found()}`);
      this.pos++;
      this.spaces();
      const value = this.value(key);
      this.endOfLine();
      if (out.has(key)) throw new TomlSyntaxError(line, `key "${key}" is set twice (first on line ${out.get(key)!.line})`);
      out.set(key, { value, line });
    }
  }

  private peek(): string {
    return this.s[this.pos] ?? "";
  }

  private found(): string {
    const c = this.peek();
    return c === "" ? "the end of the file" : c === "\n" || c === "\r" ? "the end of the line" : JSON.stringify(c);
  }

  private fail(message: string): TomlSyntaxError {
    return new TomlSyntaxError(this.line, message);
  }

  private spaces(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++;
  }

  private comment(): void {
    if (this.peek() !== "#") return;
    while (this.pos < this.s.length && this.peek() !== "\n") this.pos++;
  }

  private newline(): boolean {
    if (this.s.startsWith("\r\n", this.pos)) this.pos += 2;
    else if (this.peek() === "\n") this.pos++;
    else return false;
    this.line++;
    return true;
  }

  /** Skips whitespace, comments and newlines (between statements, and inside arrays). */
  private skipBlankLines(): void {
    for (;;) {
      this.spaces();
      this.comment();
      if (!this.newline()) return;
    }
  }

  private endOfLine(): void {
    this.spaces();
    this.comment();
    if (this.pos >= this.s.length || this.newline()) return;
    throw this.fail(`expected the end of the line after the value, found ${this.found()}`);
  }

  private key(): string {
    const c = this.peek();
    if (c === '"') return this.basicString();
    if (c === "'") return this.literalString();
    const start = this.pos;
    while (BARE_KEY.test(this.peek())) this.pos++;
    if (this.pos === start) throw this.fail(`expected a key, found ${this.found()}`);
    return this.s.slice(start, this.pos);
  }

  private value(key: string): TomlValue {
    const c = this.peek();
    if (c === "[") return this.array(key);
    return this.scalar(key);
  }

  private scalar(key: string): TomlScalar {
    const c = this.peek();
    if (c === '"') return this.basicString();
    if (c === "'") return this.literalString();
    const m = /^[^\s,#\]]+/.exec(this.s.slice(this.pos));
    const word = m?.[0] ?? "";
    if (word === "true" || word === "false") {
      this.pos += word.length;
      return word === "true";
    }
    if (/^[+-]?(?:0|[1-9](?:_?[0-9])*)$/.test(word)) {
      const n = Number(word.replace(/_/g, ""));
      if (!Number.isSafeInteger(n)) throw this.fail(`integer ${word} of key "${key}" is too large`);
      this.pos += word.length;
      return n;
    }
    if (c === "{") throw this.fail(`inline tables are not supported (key "${key}")`);
    if (word === "") throw this.fail(`expected a value for key "${key}", found ${this.found()}`);
    throw this.fail(`unsupported value ${word} for key "${key}": use a "string", an integer, true/false or an array`);
  }

  private array(key: string): TomlScalar[] {
    this.pos++; // [
    const out: TomlScalar[] = [];
    for (;;) {
      this.skipBlankLines();
      if (this.peek() === "]") break;
      if (this.peek() === "[") throw this.fail(`nested arrays are not supported (key "${key}")`);
      out.push(this.scalar(key));
      this.skipBlankLines();
      if (this.peek() === ",") {
        this.pos++;
        continue;
      }
      if (this.peek() !== "]") throw this.fail(`expected "," or "]" in the array of key "${key}", found ${this.found()}`);
      break;
    }
    this.pos++; // ]
    return out;
  }

  private literalString(): string {
    if (this.s.startsWith("'''", this.pos)) throw this.fail("multi-line strings are not supported");
    const end = this.s.indexOf("'", this.pos + 1);
    const nl = this.s.indexOf("\n", this.pos + 1);
    if (end < 0 || (nl >= 0 && nl < end)) throw this.fail("unterminated string");
    const v = this.s.slice(this.pos + 1, end);
    this.pos = end + 1;
    return v;
  }

  private basicString(): string {
    if (this.s.startsWith('"""', this.pos)) throw this.fail("multi-line strings are not supported");
    this.pos++;
    let out = "";
    for (;;) {
      const c = this.peek();
      if (c === "" || c === "\n" || c === "\r") throw this.fail("unterminated string");
      this.pos++;
      if (c === '"') return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.peek();
      this.pos++;
      if (ESCAPES[e] !== undefined) out += ESCAPES[e];
      else if (e === "u" || e === "U") out += this.unicode(e === "u" ? 4 : 8);
      else throw this.fail(`invalid escape "\\${e}" in a string`);
    }
  }

  private unicode(digits: number): string {
    const hex = this.s.slice(this.pos, this.pos + digits);
    const cp = /^[0-9A-Fa-f]+$/.test(hex) && hex.length === digits ? Number.parseInt(hex, 16) : NaN;
    if (!(cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) throw this.fail(`invalid unicode escape "${hex}" in a string`);
    this.pos += digits;
    return String.fromCodePoint(cp);
  }
}
