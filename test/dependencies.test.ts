import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * package.json says what the program uses: every runtime dependency is imported by src/ (the shim and
 * its generated code), every package src/ imports is a runtime dependency, and every package the tests,
 * benchmarks and scripts import is declared (as a dependency or a devDependency).
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SELF = path.join(ROOT, "test", "dependencies.test.ts");

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function files(dir: string, keep: (name: string) => boolean): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return name === "node_modules" ? [] : files(p, keep);
    return keep(name) ? [p] : [];
  });
}

const isSource = (name: string) => /\.(ts|js|mjs|cjs)$/.test(name) && !name.endsWith(".d.ts");

/** The npm package of a bare module specifier ("@grpc/grpc-js", "protobufjs/minimal.js" -> "protobufjs"). */
export function packageOf(spec: string): string | undefined {
  if (spec.startsWith(".") || spec.startsWith("/") || /^(node|bun):/.test(spec) || spec === "bun") return undefined;
  if (builtinModules.includes(spec.split("/")[0]!)) return undefined; // "fs", "net", "fs/promises"
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Packages a source text loads: static imports and re-exports, dynamic imports, require and createRequire(...)(name). */
export function packagesIn(text: string): Set<string> {
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']/g),
    ...text.matchAll(/(?:^|\n)\s*import\s+["']([^"']+)["']/g),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ...text.matchAll(/(?:\brequire|\bcreateRequire\([^()]*\))\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1]!);
  return new Set(specs.map(packageOf).filter((p): p is string => p !== undefined));
}

function packagesUnder(dirs: string[]): Map<string, string> {
  const where = new Map<string, string>();
  for (const dir of dirs) {
    for (const file of files(path.join(ROOT, dir), isSource)) {
      if (file === SELF) continue; // its own examples of import forms
      for (const pkg of packagesIn(readFileSync(file, "utf8"))) if (!where.has(pkg)) where.set(pkg, path.relative(ROOT, file));
    }
  }
  return where;
}

void suite("dependencies", () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as PackageJson;
  const runtime = Object.keys(pkg.dependencies ?? {});
  const declared = new Set([...runtime, ...Object.keys(pkg.devDependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]);

  void test("finds the imports of the sources and of the generated code", () => {
    assert.ok(existsSync(path.join(ROOT, "src/gen/task.js")), "src/gen/task.js is missing: run npm run build first");
    const src = packagesUnder(["src"]);
    assert.ok(src.has("koffi") && src.has("protobufjs"), `found only ${[...src.keys()].join(", ")}`);
  });

  void test("packagesIn reads every form the sources use", () => {
    const text = [
      'import a from "protobufjs/minimal.js";',
      'export { b } from "@scope/pkg/sub";',
      'const k = createRequire(import.meta.url)("koffi");',
      'const m = await import("esbuild");',
      'import "side-effect";',
      'import fs from "node:fs"; import x from "./local.js"; const f = require("bun:ffi"); const n = require("net");',
    ].join("\n");
    assert.deepEqual([...packagesIn(text)].sort(), ["@scope/pkg", "esbuild", "koffi", "protobufjs", "side-effect"]);
  });

  void test("every runtime dependency is imported by src/", () => {
    const src = packagesUnder(["src"]);
    const unused = runtime.filter((name) => !src.has(name));
    assert.deepEqual(unused, [], `runtime dependencies nothing in src/ imports (remove them, or make them devDependencies): ${unused.join(", ")}`);
  });

  void test("every package src/ imports is a runtime dependency", () => {
    const wrong = [...packagesUnder(["src"])].filter(([name]) => !runtime.includes(name)).map(([name, file]) => `${name} (${file})`);
    assert.deepEqual(wrong, [], "src/ imports packages that are not in package.json's dependencies");
  });

  void test("every package the tests, benchmarks and scripts import is declared", () => {
    const undeclared = [...packagesUnder(["test", "bench", "scripts"])].filter(([name]) => !declared.has(name)).map(([name, file]) => `${name} (${file})`);
    assert.deepEqual(undeclared, []);
  });
});
