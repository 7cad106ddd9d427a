import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * The import table of docs/contracts.md: imports point down (shim -> task/sandbox -> runc/stdio/ttrpc/
 * cgroups -> sys), task and sandbox are peers, and a top-level folder is entered only through its index.js.
 * src/shim/ is split into sub-folders (keys "shim/x", issue 18) that import each other's files directly, no
 * index.js. invocation and packaging run in every `start`/`delete`: root files only, not even gen.
 */
const SHIM: Record<string, readonly string[]> = {
  "shim/invocation": [""],
  "shim/packaging": [""],
  "shim/config": ["", "gen"],
  "shim/events": ["", "gen", "task", "ttrpc"],
  "shim/socket": ["", "gen", "shim/invocation", "ttrpc", "sys"],
  "shim/diagnostics": ["", "gen", "shim/events", "task", "sandbox", "ttrpc"],
  "shim/manager": ["", "gen", "shim/invocation", "shim/packaging", "shim/socket", "shim/config", "shim/diagnostics", "shim/spare", "sys"],
  // The warm spare: a booted daemon waiting for a pod (its protocol.ts is what manager/warm.ts loads).
  "shim/spare": ["", "gen", "shim/invocation", "shim/packaging", "shim/socket", "shim/config", "shim/diagnostics", "shim/daemon", "sys"],
  "shim/daemon": ["", "gen", "shim/invocation", "shim/socket", "shim/config", "shim/diagnostics", "shim/events",
    "task", "sandbox", "ttrpc", "sys"],
};

const ALLOWED: Record<string, readonly string[]> = {
  "": [], // src/errdefs.ts, src/log.ts
  gen: [],
  sys: [""],
  ttrpc: ["", "gen"],
  runc: ["", "sys"],
  stdio: ["", "sys"],
  cgroups: ["", "gen", "sys"],
  task: ["", "gen", "sys", "ttrpc", "runc", "stdio", "cgroups"],
  sandbox: ["", "gen", "sys", "ttrpc", "runc", "cgroups"],
  ...SHIM,
  // The executable's entry: every shim sub-folder, and what they may import.
  "shim/entry": [...new Set([...Object.keys(SHIM), ...Object.values(SHIM).flat()])],
};

/** At most this many .ts files in one folder of src/ (issue 18). */
const MAX_FILES = 15;

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");
const rel = (file: string): string => path.relative(SRC, file);

/** src/ and every folder under it, gen included. */
function folders(dir: string): string[] {
  const subs = readdirSync(dir).filter((name) => statSync(path.join(dir, name)).isDirectory());
  return [dir, ...subs.flatMap((name) => folders(path.join(dir, name)))];
}

const tsFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith(".ts") && statSync(path.join(dir, n)).isFile());

/** Every .ts source file under src/, without src/gen. */
function sources(): string[] {
  return folders(SRC)
    .filter((dir) => rel(dir).split(path.sep)[0] !== "gen")
    .flatMap((dir) => tsFiles(dir).filter((n) => !n.endsWith(".d.ts")).map((n) => path.join(dir, n)));
}

/** The import table's key of a file: "" for src/*.ts, "shim/x" under src/shim/x/, else the top-level folder. */
function folderOf(file: string): string {
  const parts = rel(file).split(path.sep);
  if (parts.length === 1) return "";
  if (parts[0] === "shim" && parts.length > 2) return `shim/${parts[1]}`;
  return parts[0]!;
}

/** Relative specifiers of a file: static imports (also `import type` and side-effect imports), re-exports, dynamic imports. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s+"(\.[^"]+)"/g)) out.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+"(\.[^"]+)"/g)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*"(\.[^"]+)"\s*\)/g)) out.push(m[1]!);
  return out;
}

/** The source file an import of `file` names (`./x.js` -> ./x.ts), as an absolute path. */
const target = (file: string, spec: string): string => path.resolve(path.dirname(file), spec.replace(/\.js$/, ".ts"));

/** The files of each group that import each other in a circle (strongly connected components, Tarjan). */
function circles(files: readonly string[]): string[][] {
  const known = new Set(files);
  const edges = new Map(files.map((f) => [f, [...new Set(imports(f).map((s) => target(f, s)))].filter((t) => known.has(t))]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (f: string): void => {
    index.set(f, index.size);
    low.set(f, index.get(f)!);
    stack.push(f);
    for (const t of edges.get(f)!) {
      if (!index.has(t)) {
        visit(t);
        low.set(f, Math.min(low.get(f)!, low.get(t)!));
      } else if (stack.includes(t)) low.set(f, Math.min(low.get(f)!, index.get(t)!));
    }
    if (low.get(f) !== index.get(f)) return;
    const group: string[] = [];
    for (let t = stack.pop()!; ; t = stack.pop()!) {
      group.push(rel(t));
      if (t === f) break;
    }
    if (group.length > 1 || edges.get(f)!.includes(f)) out.push(group.sort());
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/**
 * The header the first .ts file (by name) of a folder opens with, as `//` lines: "Folder src/<folder>:",
 * "Owns: ...", "Must not import: a, b, c." (the list may continue on the next lines). Problems, or [].
 */
function headerProblems(dir: string, first: string): string[] {
  const folder = rel(dir).split(path.sep).join("/");
  const lead: string[] = [];
  for (const line of readFileSync(path.join(dir, first), "utf8").split("\n")) {
    if (!line.startsWith("//")) break;
    lead.push(line.replace(/^\/\/\s?/, ""));
  }
  const text = lead.join("\n");
  const where = `src/${folder}/${first}`;
  if (lead[0] !== `Folder src/${folder}:`) return [`${where}: does not open with "// Folder src/${folder}:"`];
  if (!/^Owns: \S/m.test(text)) return [`${where}: no "// Owns: ..." line in its header`];
  const list = /^Must not import: ([^.]*)\./m.exec(text);
  if (!list) return [`${where}: no "// Must not import: a, b." line in its header`];
  const key = folder.startsWith("shim/") ? folder : folder.split("/")[0]!;
  const named = list[1]!.split(",").map((s) => s.trim()).filter((s) => s !== "").sort();
  const expected = forbidden(key);
  return named.join(", ") === expected.join(", ") ? [] : [`${where}: "Must not import: ${expected.join(", ")}." by the import table`];
}

/** The folders `key` may not import, as its header names them ("shim" for all of src/shim/). */
function forbidden(key: string): string[] {
  const allowed = new Set([key, "", ...(ALLOWED[key] ?? [])]);
  const out = Object.keys(ALLOWED).filter((k) => !allowed.has(k));
  const shim = out.filter((k) => k.startsWith("shim/"));
  const all = shim.length === Object.keys(ALLOWED).filter((k) => k.startsWith("shim/")).length;
  return (all ? [...out.filter((k) => !k.startsWith("shim/")), "shim"] : out).sort();
}

void suite("architecture", () => {
  const files = sources();

  void test("finds the source tree", () => {
    assert.ok(files.length > 20, `only ${files.length} files under ${SRC}`);
  });

  void test("every import points to an allowed folder; a top-level folder is entered through its index.js", () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      const allowed = ALLOWED[from];
      if (allowed === undefined) {
        bad.push(`${rel(file)}: folder "${from}" is not in the import table`);
        continue;
      }
      for (const spec of imports(file)) {
        const to = folderOf(target(file, spec));
        if (to === from) continue;
        if (!allowed.includes(to)) bad.push(`${rel(file)} imports ${spec} (${from || "root"} -> ${to || "root"})`);
        else if (to !== "" && to !== "gen" && !to.startsWith("shim/") && path.basename(spec) !== "index.js") {
          bad.push(`${rel(file)} imports ${spec}: enter "${to}" through its index.js`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  void test("the first .ts file of each folder opens with the folder's header", () => {
    const bad: string[] = [];
    for (const dir of folders(SRC)) {
      if (dir === SRC || rel(dir).split(path.sep)[0] === "gen") continue;
      const first = tsFiles(dir).sort()[0];
      if (first !== undefined) bad.push(...headerProblems(dir, first));
    }
    assert.deepEqual(bad, []);
  });

  void test(`no folder of src/ has more than ${MAX_FILES} .ts files`, () => {
    const big = folders(SRC).map((dir) => ({ dir: `src/${rel(dir)}`, n: tsFiles(dir).length })).filter((f) => f.n > MAX_FILES);
    assert.deepEqual(big, []);
  });

  void test("no file-level import circle in src/ (imports, import type, re-exports, import())", () => {
    assert.deepEqual(circles(files), []);
  });
});
