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
  /** Reads the TOML file a `runtimeoptions.v1.Options` names in `config_path` (ctr --runtime-config-path). */
  readConfigFile?(path: string): string;
}

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
const bool = (v: unknown) => (v === true ? true : undefined);
const num = (v: unknown) => (typeof v === "number" && v !== 0 ? v : undefined);

/** Drops `type.googleapis.com/`-style prefixes. */
export function typeName(typeUrl: string): string {
  const i = typeUrl.lastIndexOf("/");
  return i >= 0 ? typeUrl.slice(i + 1) : typeUrl;
}

/** Parses `any` into RuntimeOptions. Unknown types are an InvalidArgument error naming the type. */
export function parseOptions(any: AnyLike | null | undefined, codecs: OptionCodecs): RuntimeOptions {
  if (any === null || any === undefined || !any.typeUrl) return {};
  const value = any.value ?? new Uint8Array();
  const type = typeName(any.typeUrl);
  switch (type) {
    case "containerd.runc.v1.Options": {
      const o = codecs.runcOptions(value);
      return clean({
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
      });
    }
    case "containerd.linux.runc.CreateOptions": {
      const o = codecs.linuxCreateOptions(value);
      return clean({
        noPivotRoot: bool(o.noPivotRoot),
        noNewKeyring: bool(o.noNewKeyring),
        shimCgroup: str(o.shimCgroup),
        ioUid: num(o.ioUid),
        ioGid: num(o.ioGid),
        criuImagePath: str(o.criuImagePath),
        criuWorkPath: str(o.criuWorkPath),
      });
    }
    case "runtimeoptions.v1.Options": {
      const o = codecs.runtimeOptions(value);
      let body = o.configBody && o.configBody.length > 0 ? Buffer.from(o.configBody).toString("utf8") : "";
      // CRI sends the TOML table inline; `ctr --runtime-config-path` sends only a path to it.
      if (body === "" && o.configPath && codecs.readConfigFile !== undefined) body = readConfig(codecs, o.configPath);
      return fromToml(parseTomlTable(body));
    }
    default:
      throw invalidArgument(`Cannot use runtime options of type "${any.typeUrl}": unsupported type`);
  }
}

function readConfig(codecs: OptionCodecs, file: string): string {
  try {
    return codecs.readConfigFile!(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? String(err);
    throw invalidArgument(`Cannot read runtime options file "${file}": ${why}`, { cause: err });
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
