// Folder src/shim/invocation:
// Owns: what a shim process is given and answers by hand: flags, stdin, hand-encoded protobuf.
// Must not import: cgroups, gen, runc, sandbox, shim/config, shim/daemon, shim/diagnostics, shim/entry,
//   shim/events, shim/manager, shim/packaging, shim/socket, shim/spare, stdio, sys, task, ttrpc.

/**
 * Command-line parsing for the shim binary, Go `flag` style (shared/protocol.md §1.2). Pure: no IO, no
 * imports, so `main.ts` can parse argv before it decides which action module to load.
 *
 * containerd sends `-namespace N -address A -publish-binary B -id ID [-bundle B] [-debug] <action>`.
 * Accepted spellings: `-x v`, `-x=v`, `--x v`, `--x=v`; booleans `-x`, `-x=true|false`.
 */

/** What the process does: the containerd actions, or the long-lived daemon (no action word). */
export type Action = "start" | "delete" | "serve";

/** Parsed command line. Strings default to "" and booleans to false. */
export interface Flags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  /** Daemon only: the socket path it serves (inherited on fd 3, else bound here); removed at exit. */
  socket: string;
  /** Accepted for compatibility with the Go shim library; unused. */
  debugSocket: string;
  /** Daemon only: run as the warm spare listening on this private socket (src/shim/spare/) until adopted. */
  spare: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  help: boolean;
  action: Action;
}

/** A command line that cannot be parsed. `main` prints the message and exits 1. */
export class FlagError extends Error {
  override name = "FlagError";
}

type StringKey = "namespace" | "address" | "publishBinary" | "id" | "bundle" | "socket" | "debugSocket" | "spare";
type BoolKey = "debug" | "version" | "info" | "help";

const STRING_FLAGS: Record<string, StringKey> = {
  namespace: "namespace",
  address: "address",
  "publish-binary": "publishBinary",
  id: "id",
  bundle: "bundle",
  socket: "socket",
  "debug-socket": "debugSocket",
  spare: "spare",
};

const BOOL_FLAGS: Record<string, BoolKey> = {
  debug: "debug",
  v: "version",
  version: "version",
  info: "info",
  h: "help",
  help: "help",
};

/** `--start` / `--delete`: aliases of the positional action, for manual debugging. */
const ACTION_FLAGS: Record<string, Action> = { start: "start", delete: "delete" };

/** Usage text for `-help` and flag errors. */
export const USAGE = `Usage: containerd-shim-ts-v2 [flags] [start|delete]
  -namespace string       namespace of the task
  -address string         containerd's gRPC socket path (input of the socket hash)
  -publish-binary string  containerd's binary (unused; events go over TTRPC_ADDRESS)
  -id string              id of the task (or sandbox)
  -bundle string          bundle path (delete)
  -debug                  log at debug level
  -v, -version            print the version and exit
  -info                   print a containerd.types.RuntimeInfo protobuf and exit
Without an action the process runs as the shim daemon (started by "start").
`;

function parseBool(name: string, value: string): boolean {
  switch (value.toLowerCase()) {
    case "1":
    case "t":
    case "true":
      return true;
    case "0":
    case "f":
    case "false":
      return false;
    default:
      throw new FlagError(`Invalid boolean value "${value}" for flag -${name}`);
  }
}

function setAction(flags: Flags, seen: { action: boolean }, action: Action): void {
  if (seen.action && flags.action !== action) {
    throw new FlagError(`Conflicting actions "${flags.action}" and "${action}"`);
  }
  flags.action = action;
  seen.action = true;
}

/**
 * Parses argv (without the node binary and script). Throws `FlagError` for unknown flags, missing
 * values, bad booleans, unknown action words and conflicting actions. Flags may follow the action.
 */
export function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = {
    namespace: "",
    address: "",
    publishBinary: "",
    id: "",
    bundle: "",
    socket: "",
    debugSocket: "",
    spare: "",
    debug: false,
    version: false,
    info: false,
    help: false,
    action: "serve",
  };
  const seen = { action: false };
  let positional = false;
  let onlyPositional = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (onlyPositional || arg === "-" || !arg.startsWith("-")) {
      if (arg !== "start" && arg !== "delete") throw new FlagError(`Unknown action "${arg}"`);
      if (positional) throw new FlagError(`Unexpected argument "${arg}" after action "${flags.action}"`);
      positional = true;
      setAction(flags, seen, arg);
      continue;
    }
    if (arg === "--") {
      onlyPositional = true;
      continue;
    }
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (name === "" || name.startsWith("-")) throw new FlagError(`Bad flag syntax "${arg}"`);
    const stringKey = STRING_FLAGS[name];
    const boolKey = BOOL_FLAGS[name];
    const action = ACTION_FLAGS[name];
    if (stringKey !== undefined) {
      let value = inline;
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new FlagError(`Flag needs an argument: -${name}`);
        value = argv[++i] ?? "";
      }
      flags[stringKey] = value;
    } else if (boolKey !== undefined) {
      flags[boolKey] = inline === undefined ? true : parseBool(name, inline);
    } else if (action !== undefined) {
      if (inline === undefined || parseBool(name, inline)) setAction(flags, seen, action);
    } else {
      throw new FlagError(`Unknown flag "${arg}"`);
    }
  }
  return flags;
}

/** Returns the flags that `start` passes to the daemon it spawns (no action word: daemon mode). */
export function daemonArgs(flags: Flags, socketPath: string, debug: boolean): string[] {
  const args = ["-namespace", flags.namespace, "-id", flags.id, "-address", flags.address];
  args.push("-publish-binary", flags.publishBinary, "-socket", socketPath);
  if (debug) args.push("-debug");
  return args;
}

/** The flags of a warm spare: no id or socket yet (Adopt brings them); `-bundle` names the FIFO it logs to until then. */
export function spareArgs(flags: Flags, spareSocket: string, logBundle: string, debug: boolean): string[] {
  const args = ["-namespace", flags.namespace, "-address", flags.address, "-publish-binary", flags.publishBinary];
  args.push("-spare", spareSocket, "-bundle", logBundle);
  if (debug) args.push("-debug");
  return args;
}
