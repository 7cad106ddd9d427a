/**
 * Runtime options as they reach the shim: `containerd.runc.v1.Options` (2.x clients, CRI for runc-like
 * runtimes), `containerd.linux.runc.CreateOptions` (1.6/1.7 Go clients for non-runc runtime names) and
 * `runtimeoptions.v1.Options` (CRI: the runtime's TOML `options` table). All become one shape.
 */
import { failedPrecondition, invalidArgument } from "../errdefs.js";

/** Normalized options; absent fields take the runc shim's defaults. */
export interface RuntimeOptions {
  binaryName?: string;
  root?: string;
  systemdCgroup?: boolean;
  noPivotRoot?: boolean;
  noNewKeyring?: boolean;
  shimCgroup?: string;
  ioUid?: number;
  ioGid?: number;
  criuPath?: string;
  criuImagePath?: string;
  criuWorkPath?: string;
}

/** An `Any` as decoded by protobufjs. */
export interface AnyLike {
  typeUrl?: string | null;
  value?: Uint8Array | null;
}

/** Decoders for the option messages, injected so this module does not load generated code. */
export interface OptionCodecs {
  runcOptions(value: Uint8Array): Record<string, unknown>;
  linuxCreateOptions(value: Uint8Array): Record<string, unknown>;
  runtimeOptions(value: Uint8Array): { configBody?: Uint8Array | null; configPath?: string | null };
}

/** The shim config file as a Create needs it (src/shim/config/config.ts `ShimConfig` satisfies it). */
export interface TaskConfig {
  /** The OCI runtime binary, used when the runtime options give no BinaryName. */
  runtime?: string;
  /** Runtime options (the options table's keys: BinaryName, Root, ...) from a file named by ConfigPath, type-checked. */
  runtimeOptions: Record<string, string | number | boolean>;
}

/**
 * Loads the shim config file for a Create; `configPath` is the runtimeoptions.v1.Options `config_path`,
 * if the options carry one. Throws InvalidArgument naming the file and key for a file it cannot use.
 * Injected by the shim (the composition root), which owns the file's format.
 */
export type ConfigLoader = (configPath: string | undefined) => TaskConfig;

/** The loader of a task service that has no config file: a ConfigPath cannot be honoured. */
export const NO_CONFIG: ConfigLoader = (configPath) => {
  if (configPath === undefined) return { runtimeOptions: {} };
  throw invalidArgument(`Cannot read shim config file "${configPath}": no config loader`);
};

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
const bool = (v: unknown) => (v === true ? true : undefined);
const num = (v: unknown) => (typeof v === "number" && v !== 0 ? v : undefined);

/** Drops `type.googleapis.com/`-style prefixes. */
export function typeName(typeUrl: string): string {
  const i = typeUrl.lastIndexOf("/");
  return i >= 0 ? typeUrl.slice(i + 1) : typeUrl;
}

/**
 * Parses `any` into RuntimeOptions and applies the shim config file (`loadConfig`): a
 * runtimeoptions.v1.Options naming a file in `config_path` takes its runtime options from that file, and
 * the file's `runtime` is the binary unless a BinaryName was given (the more specific setting wins).
 * Unknown types, and files the loader refuses, are InvalidArgument errors naming the type or the file.
 */
export function parseOptions(any: AnyLike | null | undefined, codecs: OptionCodecs, loadConfig: ConfigLoader = NO_CONFIG): RuntimeOptions {
  const { options, configPath } = decodeOptions(any, codecs);
  const config = loadConfig(configPath);
  const out = configPath === undefined ? options : { ...fromToml(config.runtimeOptions), ...options };
  if (out.binaryName === undefined && config.runtime) out.binaryName = config.runtime;
  return out;
}

function decodeOptions(any: AnyLike | null | undefined, codecs: OptionCodecs): { options: RuntimeOptions; configPath?: string } {
  if (any === null || any === undefined || !any.typeUrl) return { options: {} };
  const value = any.value ?? new Uint8Array();
  const type = typeName(any.typeUrl);
  switch (type) {
    case "containerd.runc.v1.Options": {
      const o = codecs.runcOptions(value);
      return { options: clean({
        binaryName: str(o.binaryName),
        root: str(o.root),
        systemdCgroup: bool(o.systemdCgroup),
        noPivotRoot: bool(o.noPivotRoot),
        noNewKeyring: bool(o.noNewKeyring),
        shimCgroup: str(o.shimCgroup),
        ioUid: num(o.ioUid),
        ioGid: num(o.ioGid),
        criuPath: str(o.criuPath),
        criuImagePath: str(o.criuImagePath),
        criuWorkPath: str(o.criuWorkPath),
      }) };
    }
    case "containerd.linux.runc.CreateOptions": {
      const o = codecs.linuxCreateOptions(value);
      return { options: clean({
        noPivotRoot: bool(o.noPivotRoot),
        noNewKeyring: bool(o.noNewKeyring),
        shimCgroup: str(o.shimCgroup),
        ioUid: num(o.ioUid),
        ioGid: num(o.ioGid),
        criuImagePath: str(o.criuImagePath),
        criuWorkPath: str(o.criuWorkPath),
      }) };
    }
    case "runtimeoptions.v1.Options": {
      const o = codecs.runtimeOptions(value);
      // CRI sends the options table inline, or, when the table sets ConfigPath, only that path (and drops
      // the other keys); `ctr --runtime-config-path` sends only a path. The file is the shim config file.
      if (o.configPath) return { options: {}, configPath: o.configPath };
      const body = o.configBody && o.configBody.length > 0 ? Buffer.from(o.configBody).toString("utf8") : "";
      return { options: fromToml(parseTomlTable(body)) };
    }
    default:
      throw invalidArgument(`Cannot use runtime options of type "${any.typeUrl}": unsupported type`);
  }
}

/** What the host offers that some options depend on. */
export interface HostFacts {
  /** True if systemd runs as init (`/run/systemd/system` exists): `systemd_cgroup` needs it. */
  systemdRunning: boolean;
}

/** Refuses options this host cannot honour, before runc is run, with the reason. */
export function checkOptions(o: RuntimeOptions, host: HostFacts): void {
  if (o.systemdCgroup === true && !host.systemdRunning) {
    throw failedPrecondition(
      "Cannot use runtime option systemd_cgroup: systemd is not running on this host (no /run/systemd/system)",
    );
  }
}

function clean(o: RuntimeOptions): RuntimeOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as RuntimeOptions;
}

/** Maps the CRI runtime `options` TOML keys (runc's Go field names) onto RuntimeOptions. */
function fromToml(t: Record<string, string | number | boolean>): RuntimeOptions {
  return clean({
    binaryName: str(t.BinaryName),
    root: str(t.Root),
    systemdCgroup: bool(t.SystemdCgroup),
    noPivotRoot: bool(t.NoPivotRoot),
    noNewKeyring: bool(t.NoNewKeyring),
    shimCgroup: str(t.ShimCgroup),
    ioUid: num(t.IoUid),
    ioGid: num(t.IoGid),
    criuPath: str(t.CriuPath),
    criuImagePath: str(t.CriuImagePath),
    criuWorkPath: str(t.CriuWorkPath),
  });
}

/** A flat `key = value` TOML table (strings, integers, booleans), which is what CRI passes. */
export function parseTomlTable(text: string): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("[")) continue;
    const m = /^([A-Za-z0-9_.-]+|"[^"]*")\s*=\s*(.+)$/.exec(line);
    if (m === null) continue;
    const key = m[1]!.replace(/^"|"$/g, "");
    const v = m[2]!.trim();
    if (v === "true" || v === "false") out[key] = v === "true";
    else if (/^-?\d+$/.test(v)) out[key] = Number(v);
    else if (/^".*"$/.test(v) || /^'.*'$/.test(v)) out[key] = v.slice(1, -1);
  }
  return out;
}
