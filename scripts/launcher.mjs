// The `npm run build` step that writes the launcher bin/containerd-shim-ts-v2 (a build output, not in git)
// from scripts/launcher.sh.in, with the absolute root of the checkout it is built in: a copy or a hard link
// of the launcher put anywhere (containerd's runtime_path, a temp dir) finds the code there.
//   node scripts/launcher.mjs [--root DIR] [--out FILE]
//   --root  the checkout the launcher falls back to (default: this one, its real path)
//   --out   where to write it (default: <this checkout>/bin/containerd-shim-ts-v2)
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The built entry point, relative to a checkout: the one place the launcher's code is named. */
export const ENTRY = "dist/src/shim/entry/main.js";
export const NAME = "containerd-shim-ts-v2";

const checkout = realpathSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), ".."));

/** A single-quoted sh word. */
const sh = (s) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The one line a launcher prints when neither its own checkout nor `root` has the built entry. */
export function missingLine(root) {
  return `${NAME}: no ${path.join(root, ENTRY)} (this launcher runs the checkout it is in or was built in);` +
    ` run ${path.join(root, "bin", NAME)} itself after "npm run build" there, or install the single executable` +
    ` release/${NAME} instead ("npm run package", then scripts/install.sh)`;
}

/** The launcher's text for a checkout at `root` (absolute). */
export function launcher(root) {
  if (!path.isAbsolute(root) || /[\n\r]/.test(root)) throw new Error(`--root must be an absolute path on one line, not ${JSON.stringify(root)}`);
  const values = {
    "@SH_ROOT@": sh(root), "@SH_MISSING@": sh(missingLine(root)), "@ENTRY@": ENTRY,
    "@JS_ROOT@": JSON.stringify(root), "@JS_MISSING@": JSON.stringify(missingLine(root)), "@JS_ENTRY@": JSON.stringify(ENTRY),
  };
  const text = readFileSync(path.join(checkout, "scripts", "launcher.sh.in"), "utf8")
    .replace(/@[A-Z_]+@/g, (k) => values[k] ?? (() => { throw new Error(`launcher.sh.in: unknown placeholder ${k}`); })());
  return text;
}

/** Writes the launcher to `out` (mode 0755, replaced by rename so that a running one keeps its file). */
export function writeLauncher(root, out) {
  const text = launcher(root);
  if (existsSync(out) && readFileSync(out, "utf8") === text) return;
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp.${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    if (args[i + 1] === undefined) throw new Error(`${name} needs a value`);
    return args[i + 1];
  };
  writeLauncher(path.resolve(opt("--root", checkout)), path.resolve(opt("--out", path.join(checkout, "bin", NAME))));
}
