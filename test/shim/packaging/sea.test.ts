// The pieces of the single executable that run in any Node: koffi's native module written to a root-only
// directory and loaded (src/shim/packaging/sea-koffi.ts), and the daemon's command line (src/shim/manager/start.ts).
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { KOFFI_ASSET, PACKAGED } from "../../../src/shim/packaging/packaged.js";
import { loadEmbedded, nativeFile, sha256Hex } from "../../../src/shim/packaging/sea-koffi.js";
import { BIN_SCRIPT, daemonCommand } from "../../../src/shim/manager/start.js";
import { packageVersion } from "../../../src/shim/entry/version.js";
import { REPO_ROOT } from "../../helpers/image.js";
import { tempDir } from "../../helpers/shim.js";

/** koffi.node for linux-x64 glibc, as scripts/package.ts embeds it. */
const KOFFI_NODE = path.join(REPO_ROOT, "node_modules", "@koromix", "koffi-linux-x64", "linux_x64", "koffi.node");
const KOFFI_VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, "node_modules", "koffi", "package.json"), "utf8")) as { version: string }).version;

void suite("sea: native module file", () => {
  const bytes = new TextEncoder().encode("not really a shared object\n");
  const sha = sha256Hex(bytes);

  void test("is written under <base>/<sha256 prefix>/ with 0700 directories and the exact bytes", async (t) => {
    const base = path.join(await tempDir(t, "sea-native-"), "a", "base");
    const file = nativeFile(bytes, sha, base);
    assert.equal(file, path.join(base, sha.slice(0, 16), KOFFI_ASSET));
    assert.deepEqual(readFileSync(file), Buffer.from(bytes));
    for (const dir of [base, path.dirname(file)]) assert.equal(statSync(dir).mode & 0o777, 0o700, dir);
    assert.equal(statSync(file).mode & 0o077, 0);
    assert.deepEqual(readdirSync(path.dirname(file)), [KOFFI_ASSET], "no temporary file left behind");
  });

  void test("is kept when its hash matches and replaced when it does not", async (t) => {
    const base = await tempDir(t, "sea-native-");
    const file = nativeFile(bytes, sha, base);
    const ino = statSync(file).ino;
    assert.equal(statSync(nativeFile(bytes, sha, base)).ino, ino, "a good file is not rewritten");
    writeFileSync(file, "tampered");
    assert.deepEqual(readFileSync(nativeFile(bytes, sha, base)), Buffer.from(bytes));
  });

  void test("refuses a directory others can enter, a symlinked one, and bytes that do not match the hash", async (t) => {
    const root = await tempDir(t, "sea-native-");
    const open = path.join(root, "open");
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    assert.throws(() => nativeFile(bytes, sha, open), /has mode 755, not 700/);
    const base = path.join(root, "base");
    mkdirSync(base, { mode: 0o700 });
    mkdirSync(path.join(root, "elsewhere"), { mode: 0o700 });
    symlinkSync(path.join(root, "elsewhere"), path.join(base, sha.slice(0, 16)));
    assert.throws(() => nativeFile(bytes, sha, base), /is not a directory/);
    assert.throws(() => nativeFile(bytes, sha256Hex(new Uint8Array([1])), path.join(root, "b")), /does not match its recorded sha256/);
  });
});

void suite("sea: embedded koffi", () => {
  void test("is loaded with dlopen from the first base that works, and checked for its version", async (t) => {
    const root = await tempDir(t, "sea-koffi-");
    const bytes = readFileSync(KOFFI_NODE);
    const sha = sha256Hex(bytes);
    const notDir = path.join(root, "file");
    writeFileSync(notDir, "");
    assert.throws(() => loadEmbedded(bytes, sha, "0.0.0-not-it", [path.join(root, "v")]),
      /Cannot load koffi's native module: .*koffi 3\.\d+\.\d+, expected 0\.0\.0-not-it/);
    const koffi = loadEmbedded(bytes, sha, KOFFI_VERSION, [notDir, path.join(root, "k")]) as {
      version: string; load(lib: string): { func(sig: string): () => number };
    };
    assert.equal(koffi.version, KOFFI_VERSION);
    assert.equal(koffi.load("libc.so.6").func("int getpid()")(), process.pid, "the loaded koffi calls libc");
  });
});

void suite("sea: daemon command", () => {
  const args = ["-namespace", "ns", "-id", "x"];

  void test("under Node: the Node flags, the launcher, the daemon's arguments", () => {
    assert.deepEqual(daemonCommand(["--lite-mode"], args, undefined), ["--lite-mode", BIN_SCRIPT, ...args]);
  });

  void test("in the Node single executable: the same file with the Node flags as one --node-options", () => {
    assert.deepEqual(daemonCommand(["--lite-mode", "--max-semi-space-size=1"], args, "node"),
      ["--node-options=--lite-mode --max-semi-space-size=1", ...args]);
    assert.deepEqual(daemonCommand([], args, "node"), args);
  });

  void test("in the Bun single executable: the same file, the Node flags dropped", () => {
    assert.deepEqual(daemonCommand(["--lite-mode", "--max-semi-space-size=1"], args, "bun"), args);
    assert.deepEqual(daemonCommand([], args, "bun"), args);
  });

  void test("outside the bundle nothing is packaged and the version comes from package.json", () => {
    assert.equal(PACKAGED, undefined);
    const pkg = JSON.parse(readFileSync(new URL("../../../../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(packageVersion(), pkg.version);
  });
});
