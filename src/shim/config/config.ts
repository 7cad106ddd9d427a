// Folder src/shim/config:
// Owns: the shim config file (which file, its keys and values), its TOML reader, and the decoding of
//   containerd's runtime options.
// Must not import: cgroups, runc, sandbox, shim/daemon, shim/diagnostics, shim/entry, shim/events,
//   shim/invocation, shim/manager, shim/packaging, shim/socket, shim/spare, stdio, sys, task, ttrpc.

/**
 * The shim config file (README "Shim config file"): the settings that are the shim's own, in TOML.
 *
 * Which file: the runtime options' `ConfigPath` (runtimeoptions.v1.Options, from a CRI runtime's
 * `options` table or `ctr --runtime-config-path`), else `$SHIM_TS_CONFIG`, else
 * /etc/containerd-shim-ts/config.toml. Only one file is read. A missing default file means defaults; a
 * missing file that was named is an error. An unknown key or a bad value is an InvalidArgument error
 * naming the file and the key. `SHIM_TS_GROUPING` in the environment overrides `grouping` (and the other
 * SHIM_TS_* names below their keys).
 *
 * A file named by ConfigPath may also hold the runtime options (BinaryName, Root, SystemdCgroup, ...):
 * when ConfigPath is set, containerd sends nothing else (CRI drops the rest of the `options` table).
 */
import { readFileSync } from "node:fs";
import { invalidArgument, ShimError } from "../../errdefs.js";
import { parseToml, TomlSyntaxError, type TomlEntry, type TomlScalar } from "./toml.js";

/** Where the file is when neither ConfigPath nor SHIM_TS_CONFIG names one. */
export const DEFAULT_CONFIG_PATH = "/etc/containerd-shim-ts/config.toml";
/** Names the config file (lower precedence than the ConfigPath runtime option). */
export const CONFIG_ENV = "SHIM_TS_CONFIG";
/** Overrides the file's `grouping` ("pod" or "namespace"). */
export const GROUPING_ENV = "SHIM_TS_GROUPING";

/** Overrides the file's `warm` ("1"/"true" or "0"/"false"). */
export const WARM_ENV = "SHIM_TS_WARM";
/** Overrides the file's `warm_idle_ms`. */
export const WARM_IDLE_ENV = "SHIM_TS_WARM_IDLE_MS";
/** How long a warm spare waits for a pod before it exits, unless `warm_idle_ms` says otherwise. */
export const DEFAULT_WARM_IDLE_MS = 60_000;

/** Overrides the file's `linger_ms`. */
export const LINGER_ENV = "SHIM_TS_LINGER_MS";
/**
 * How long a namespace daemon keeps serving after its last pod went, unless `linger_ms` says otherwise
 * (docs/config.md has why 3 s): longer than the gap between one pod's removal and the next pod's `start` in a
 * churning namespace, short enough that an idle namespace gives its daemon's memory back within seconds.
 */
export const DEFAULT_LINGER_MS = 3000;
/** The largest `linger_ms`: a linger is brief by design; an always-on daemon is not what it is for. */
export const MAX_LINGER_MS = 600_000;
/**
 * Internal: the linger `start` hands to the namespace daemon it spawns (the daemon does not see the file
 * named by ConfigPath). Absent or not a number: no linger.
 */
export const DAEMON_LINGER_ENV = "SHIM_TS_DAEMON_LINGER_MS";

export const GROUPINGS = ["pod", "namespace"] as const;
/** One daemon per pod (the default), or one per containerd namespace (issue 9). */
export type Grouping = (typeof GROUPINGS)[number];
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type ConfigLogLevel = (typeof LOG_LEVELS)[number];

/** The effective shim settings. */
export interface ShimConfig {
  /** The OCI runtime binary (`runtime`), used when the runtime options give no BinaryName. */
  runtime?: string;
  /** `grouping`, after SHIM_TS_GROUPING; default "pod". */
  grouping: Grouping;
  /** `log_level`: the daemon's log level. Unset: debug if containerd runs with -debug, else info. */
  logLevel?: ConfigLogLevel;
  /** `runtime_flags`: Node flags for the daemon, replacing the built-in ones. Unset: the built-in ones. */
  runtimeFlags?: string[];
  /** `warm`, after SHIM_TS_WARM: keep a booted spare daemon for the next pod (src/shim/spare/). Default false. */
  warm?: boolean;
  /** `warm_idle_ms`, after SHIM_TS_WARM_IDLE_MS: how long a spare waits to be adopted. Default {@link DEFAULT_WARM_IDLE_MS}. */
  warmIdleMs?: number;
  /** `linger_ms`, after SHIM_TS_LINGER_MS: how long a namespace daemon serves on after its last pod. Default {@link DEFAULT_LINGER_MS}. */
  lingerMs?: number;
  /** Runtime options (the options table's keys, e.g. BinaryName) from a file named by ConfigPath. */
  runtimeOptions: Record<string, TomlScalar>;
  /** The file the settings came from, if one was read. */
  file?: string;
}

/** The type each runtime option key must have (the CRI `options` table keys, runc's Go field names). */
export const RUNTIME_OPTION_KEYS: Record<string, "string" | "boolean" | "integer"> = {
  BinaryName: "string",
  Root: "string",
  SystemdCgroup: "boolean",
  NoPivotRoot: "boolean",
  NoNewKeyring: "boolean",
  ShimCgroup: "string",
  IoUid: "integer",
  IoGid: "integer",
  CriuPath: "string",
  CriuImagePath: "string",
  CriuWorkPath: "string",
};

/** Flags that would make Node do something other than run the daemon. */
const NOT_DAEMON_FLAGS = /^(?:-e|--eval|-p|--print|-c|--check|-i|--interactive|-v|--version|-h|--help|--test|--run|--watch|--watch-path|-r|--require|--import|--loader|--experimental-loader)(?:=|$)/;

/** The file to read: ConfigPath > SHIM_TS_CONFIG > the default path (empty values count as unset). */
export function configPath(env: NodeJS.ProcessEnv, optionsConfigPath?: string): string {
  if (optionsConfigPath) return optionsConfigPath;
  return env[CONFIG_ENV] || DEFAULT_CONFIG_PATH;
}

/** The settings without a file (environment overrides applied). Throws InvalidArgument for a bad override. */
export function defaultShimConfig(env: NodeJS.ProcessEnv): ShimConfig {
  return withEnv({ grouping: "pod", runtimeOptions: {} }, env);
}

/**
 * Reads `path`. `fromOptions`: the path came from the ConfigPath runtime option, so runtime option keys
 * are allowed. Throws InvalidArgument naming the file (and the key) for anything it cannot use.
 */
export function loadShimConfig(path: string, env: NodeJS.ProcessEnv, opts: { fromOptions?: boolean } = {}): ShimConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && path === DEFAULT_CONFIG_PATH && !opts.fromOptions) return defaultShimConfig(env);
    throw invalidArgument(`Cannot read shim config file "${path}": ${code ?? String(err)}`, { cause: err });
  }
  let entries: Map<string, TomlEntry>;
  try {
    entries = parseToml(text);
  } catch (err) {
    if (err instanceof TomlSyntaxError) throw invalidArgument(`${path}: line ${err.line}: ${err.message}`, { cause: err });
    throw err;
  }
  const config: ShimConfig = { grouping: "pod", runtimeOptions: {}, file: path };
  for (const [key, entry] of entries) applyKey(config, key, entry, path, opts.fromOptions === true);
  return withEnv(config, env);
}

/** configPath() then loadShimConfig(). */
export function resolveShimConfig(env: NodeJS.ProcessEnv, optionsConfigPath?: string): ShimConfig {
  return loadShimConfig(configPath(env, optionsConfigPath), env, { fromOptions: !!optionsConfigPath });
}

function applyKey(config: ShimConfig, key: string, entry: TomlEntry, file: string, fromOptions: boolean): void {
  const bad = (why: string) => invalidArgument(`${file}: key "${key}" (line ${entry.line}): ${why}`);
  const v = entry.value;
  switch (key) {
    case "runtime":
      if (typeof v !== "string" || v === "") throw bad(`${show(v)} is not a non-empty string`);
      config.runtime = v;
      return;
    case "grouping":
      config.grouping = oneOf(v, GROUPINGS, bad);
      return;
    case "log_level":
      config.logLevel = oneOf(v, LOG_LEVELS, bad);
      return;
    case "runtime_flags":
      config.runtimeFlags = runtimeFlags(v, bad);
      return;
    case "warm":
      if (typeof v !== "boolean") throw bad(`${show(v)} is not true or false`);
      config.warm = v;
      return;
    case "warm_idle_ms":
      config.warmIdleMs = idleMs(v, bad);
      return;
    case "linger_ms":
      config.lingerMs = lingerMs(v, bad);
      return;
  }
  const type = RUNTIME_OPTION_KEYS[key];
  if (type === undefined) {
    throw invalidArgument(`${file}: unknown key "${key}" (line ${entry.line}): known keys are ${KNOWN_KEYS}`);
  }
  if (!fromOptions) throw bad("a runtime option is read only from a file named by the ConfigPath runtime option");
  const ok = type === "integer" ? Number.isInteger(v) : typeof v === type;
  if (!ok) throw bad(`${show(v)} is not ${type === "integer" ? "an integer" : `a ${type}`}`);
  config.runtimeOptions[key] = v as TomlScalar;
}

const KNOWN_KEYS = ["runtime", "grouping", "log_level", "runtime_flags", "warm", "warm_idle_ms", "linger_ms"].map((k) => `"${k}"`).join(", ");

function idleMs(v: unknown, bad: (why: string) => ShimError): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 100 && v <= 86_400_000) return v;
  throw bad(`${show(v)} is not an integer from 100 to 86400000 (milliseconds)`);
}

function lingerMs(v: unknown, bad: (why: string) => ShimError): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_LINGER_MS) return v;
  throw bad(`${show(v)} is not an integer from 0 to ${MAX_LINGER_MS} (milliseconds; 0: exit with the last pod)`);
}

/** The linger of a daemon `start` spawns with `config`: `linger_ms` or its default with namespace grouping, else 0. */
export function effectiveLingerMs(config: ShimConfig): number {
  return config.grouping === "namespace" ? config.lingerMs ?? DEFAULT_LINGER_MS : 0;
}

/** The daemon's linger, as `start` handed it over ({@link DAEMON_LINGER_ENV}); 0 when absent or unusable. */
export function daemonLingerMs(env: NodeJS.ProcessEnv): number {
  const v = Number(env[DAEMON_LINGER_ENV] ?? "");
  return Number.isInteger(v) && v > 0 && v <= MAX_LINGER_MS ? v : 0;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], bad: (why: string) => ShimError): T {
  if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
  throw bad(`${show(v)} is not one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
}

function runtimeFlags(v: unknown, bad: (why: string) => ShimError): string[] {
  if (!Array.isArray(v) || v.some((f) => typeof f !== "string")) throw bad(`${show(v)} is not an array of strings`);
  for (const f of v as string[]) {
    if (!/^--?[A-Za-z0-9]/.test(f) || /\s/.test(f)) throw bad(`${show(f)} is not one Node flag (like "--max-old-space-size=64")`);
    if (NOT_DAEMON_FLAGS.test(f)) throw bad(`${show(f)} would keep Node from running the shim daemon`);
  }
  return [...(v as string[])];
}

function withEnv(config: ShimConfig, env: NodeJS.ProcessEnv): ShimConfig {
  const g = env[GROUPING_ENV];
  if (g) config.grouping = oneOf(g, GROUPINGS, (why) => invalidArgument(`${GROUPING_ENV}: ${why}`));
  const w = env[WARM_ENV];
  if (w) {
    const on = oneOf(w.toLowerCase(), ["1", "true", "0", "false"] as const, (why) => invalidArgument(`${WARM_ENV}: ${why}`));
    config.warm = on === "1" || on === "true";
  }
  const idle = env[WARM_IDLE_ENV];
  if (idle) config.warmIdleMs = idleMs(Number(idle), (why) => invalidArgument(`${WARM_IDLE_ENV}: ${why}`));
  const linger = env[LINGER_ENV];
  if (linger) config.lingerMs = lingerMs(/^\d+$/.test(linger) ? Number(linger) : linger, (why) => invalidArgument(`${LINGER_ENV}: ${why}`));
  return config;
}

function show(v: unknown): string {
  return JSON.stringify(v);
}

/**
 * Internal: the log level `start` hands to the daemon it spawns (the daemon does not see the ConfigPath
 * that `start` read). Set only when the file sets `log_level`.
 */
export const DAEMON_LOG_LEVEL_ENV = "SHIM_TS_DAEMON_LOG_LEVEL";

/** The daemon's log level: what `start` handed over, else debug with containerd's -debug, else info. */
export function daemonLogLevel(env: NodeJS.ProcessEnv, debug: boolean): ConfigLogLevel {
  const handed = env[DAEMON_LOG_LEVEL_ENV];
  if ((LOG_LEVELS as readonly (string | undefined)[]).includes(handed)) return handed as ConfigLogLevel;
  return debug ? "debug" : "info";
}

/**
 * For `start`, which must not fail on a bad file: the settings, or the defaults and the reason the file
 * (or an environment override) cannot be used. Create refuses the same file with InvalidArgument.
 */
export function startConfig(env: NodeJS.ProcessEnv, optionsConfigPath?: string): { config: ShimConfig; error?: string } {
  try {
    return { config: resolveShimConfig(env, optionsConfigPath) };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { config: { grouping: "pod", runtimeOptions: {} }, error };
  }
}
