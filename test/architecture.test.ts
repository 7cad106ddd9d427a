import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * The import table of docs/contracts.md: imports point down (shim -> task/sandbox -> runc/stdio/ttrpc/
 * cgroups -> sys), task and sandbox are peers, and a folder is entered only through its index.js.
 */
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
  shim: ["", "gen", "sys", "ttrpc", "runc", "stdio", "cgroups", "task", "sandbox"],
};

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return name === "gen" ? [] : sources(p);
    return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [p] : [];
  });
}

function folderOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? "" : rel[0]!;
}

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s+"(\.[^"]+)"/g)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*"(\.[^"]+)"\s*\)/g)) out.push(m[1]!);
  return out;
}

void suite("architecture", () => {
  const files = sources(SRC);

  void test("finds the source tree", () => {
    assert.ok(files.length > 20, `only ${files.length} files under ${SRC}`);
  });

  void test("every import points to an allowed folder, through its index.js", () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      const allowed = ALLOWED[from];
      if (allowed === undefined) {
        bad.push(`${path.relative(SRC, file)}: folder "${from}" is not in the import table`);
        continue;
      }
      for (const spec of imports(file)) {
        const target = path.resolve(path.dirname(file), spec);
        const to = folderOf(target);
        if (to === from) continue;
        if (!allowed.includes(to)) bad.push(`${path.relative(SRC, file)} imports ${spec} (${from || "root"} -> ${to || "root"})`);
        else if (to !== "" && to !== "gen" && path.basename(target) !== "index.js") {
          bad.push(`${path.relative(SRC, file)} imports ${spec}: enter "${to}" through its index.js`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });
});
