/**
 * koffi inside the single executable. src/sys loads koffi with `createRequire(import.meta.url)("koffi")`;
 * in the bundle (scripts/package.ts) their `node:module` import resolves to this file instead, so that
 * call returns the native module embedded as a SEA asset: written once to a root-only directory
 * (`<base>/<sha256 prefix>/koffi.node`, mode 0700, atomically by rename), checked against the sha256
 * recorded at build time, and loaded with process.dlopen. Every other id goes to Node's own require.
 * Only the daemon (and `delete` when it unmounts) loads koffi: `start` never reaches this code.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { createRequire as nodeCreateRequire } from "node:module";
import path from "node:path";
import { getRawAsset } from "node:sea";
import { KOFFI_ASSET, PACKAGED } from "./packaged.js";

/**
 * Where the native module is written, tried in order: /run (tmpfs, cleared at boot) and, should /run be
 * mounted noexec (dlopen then fails), /var/lib. Replaced by {@link NATIVE_DIR_ENV} when that is set.
 */
export const NATIVE_DIRS: readonly string[] = ["/run/containerd-shim-ts", "/var/lib/containerd-shim-ts"];
export const NATIVE_DIR_ENV = "SHIM_TS_NATIVE_DIR";

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Throws unless `dir` is a real directory (no symlink) owned by this user and closed to everyone else. */
export function checkPrivateDir(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}, not ${uid}`);
  if ((st.mode & 0o077) !== 0) throw new Error(`${dir} has mode ${(st.mode & 0o777).toString(8)}, not 700`);
}

function privateDir(dir: string, recursive: boolean): void {
  try {
    mkdirSync(dir, { recursive, mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  checkPrivateDir(dir);
}

function sameContent(file: string, sha256: string): boolean {
  try {
    return sha256Hex(readFileSync(file)) === sha256;
  } catch {
    return false; // missing or unreadable: written anew
  }
}

/**
 * Makes `<base>/<sha256[0:16]>/<name>` hold `bytes` and returns its path. A file already there is kept
 * when its sha256 is `sha256`, else replaced. Writers racing each other each rename a complete file of
 * their own over the name, so a reader sees either no file or a whole one.
 */
export function nativeFile(bytes: Uint8Array, sha256: string, base: string, name: string = KOFFI_ASSET): string {
  privateDir(base, true);
  const dir = path.join(base, sha256.slice(0, 16));
  privateDir(dir, false);
  const file = path.join(dir, name);
  if (sameContent(file, sha256)) return file;
  if (sha256Hex(bytes) !== sha256) throw new Error(`the embedded ${name} does not match its recorded sha256`);
  const tmp = path.join(dir, `.${name}.${process.pid}.${randomBytes(4).toString("hex")}`);
  const fd = openSync(tmp, "wx", 0o600);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw err;
  }
  return file;
}

/** dlopen()s a koffi.node and checks that it is koffi `version`; returns its exports (koffi's API). */
export function loadNative(file: string, version: string): Record<string, unknown> {
  const mod = { exports: {} as Record<string, unknown> };
  process.dlopen(mod, file);
  if (mod.exports["version"] !== version) {
    throw new Error(`${file} is koffi ${String(mod.exports["version"])}, expected ${version}`);
  }
  return mod.exports;
}

/** Writes (if needed) and loads the embedded koffi from the first of `bases` where that works. */
export function loadEmbedded(bytes: Uint8Array, sha256: string, version: string, bases: readonly string[]): Record<string, unknown> {
  const errors: string[] = [];
  for (const base of bases) {
    try {
      return loadNative(nativeFile(bytes, sha256, base), version);
    } catch (err) {
      errors.push(`${base}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`Cannot load koffi's native module: ${errors.join("; ")}`);
}

let koffi: Record<string, unknown> | undefined; // one dlopen per process, as require's cache would do

function embeddedKoffi(): Record<string, unknown> {
  if (koffi !== undefined) return koffi;
  if (PACKAGED?.koffiSha256 === undefined || PACKAGED.koffiVersion === undefined) {
    throw new Error("koffi is embedded only in the Node single executable");
  }
  const asset = getRawAsset(KOFFI_ASSET);
  const bytes = typeof asset === "string" ? Buffer.from(asset) : new Uint8Array(asset);
  const override = process.env[NATIVE_DIR_ENV];
  koffi = loadEmbedded(bytes, PACKAGED.koffiSha256, PACKAGED.koffiVersion, override ? [override] : NATIVE_DIRS);
  return koffi;
}

/** Stands in for node:module's createRequire in the bundle's src/sys: "koffi" is the embedded one. */
export function createRequire(url: string | URL): (id: string) => unknown {
  return (id) => (id === "koffi" ? embeddedKoffi() : nodeCreateRequire(url)(id));
}
