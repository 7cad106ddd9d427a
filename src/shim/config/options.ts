/**
 * What `start` and `-info` read on stdin (shared/protocol.md §1.4, §11 item 1): containerd 2.3+ sends a
 * `BootstrapParams` protobuf, older versions an optional runtime-options `Any`. Runtime options come in
 * three types; `start` only needs `shim_cgroup` (and `-info` the runtime binary).
 */
import { readFileSync } from "node:fs";
import { containerd, google, runtimeoptions } from "../../gen/bootstrap.js";

/** A decoded `google.protobuf.Any`. */
export interface AnyMessage {
  typeUrl: string;
  value: Uint8Array;
}

/** containerd 2.3+ bootstrap parameters, reduced to what the shim uses. */
export interface Bootstrap {
  debug: boolean;
  ttrpcAddress: string;
  socketDir?: string;
  containerdVersion: string;
}

/** The decoded stdin of `start`. */
export interface StartInput {
  /** Set when stdin was a `BootstrapParams` for this -id and -namespace (answer with BootstrapResult). */
  bootstrap?: Bootstrap;
  /** The runtime options, from stdin directly or from a bootstrap extension. */
  options?: AnyMessage;
}

/** The runtime options the short-lived actions care about. */
export interface ShimOptions {
  shimCgroup: string;
  binaryName: string;
  /** runtimeoptions.v1.Options `config_path`: the shim config file to read (src/shim/config/config.ts). */
  configPath?: string;
}

const RUNC_OPTIONS = "containerd.runc.v1.Options";
const LINUX_CREATE_OPTIONS = "containerd.linux.runc.CreateOptions";
const RUNTIME_OPTIONS = "runtimeoptions.v1.Options";
const KNOWN = [RUNC_OPTIONS, LINUX_CREATE_OPTIONS, RUNTIME_OPTIONS];

/** The message name of a type URL (`type.googleapis.com/x.Y` and `x.Y` both give `x.Y`). */
export function typeName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
}

function decodeAny(bytes: Uint8Array): AnyMessage | undefined {
  if (bytes.length === 0) return undefined;
  const any = google.protobuf.Any.decode(bytes);
  return { typeUrl: any.typeUrl, value: any.value };
}

/**
 * Decodes `start`'s stdin. Bootstrap input is accepted only when it is non-empty, decodes, and names this
 * `-id` and `-namespace` (an options `Any` also decodes as BootstrapParams, with its type URL as the id).
 * Anything else is an optional options `Any`. Throws only if stdin is neither.
 */
export function decodeStartInput(bytes: Uint8Array, id: string, namespace: string): StartInput {
  if (bytes.length === 0) return {};
  let params: containerd.runtime.bootstrap.v1.BootstrapParams | undefined;
  try {
    params = containerd.runtime.bootstrap.v1.BootstrapParams.decode(bytes);
  } catch {
    params = undefined;
  }
  if (params !== undefined && params.instanceId === id && params.namespace === namespace && id !== "") {
    const bootstrap: Bootstrap = {
      debug: params.logLevel <= containerd.runtime.bootstrap.v1.LogLevel.LOG_LEVEL_DEBUG,
      ttrpcAddress: params.containerdTtrpcAddress,
      containerdVersion: params.containerdVersion,
    };
    if (params.socketDir) bootstrap.socketDir = params.socketDir;
    const input: StartInput = { bootstrap };
    const ext = params.extensions.find((e) => KNOWN.includes(typeName(e.value?.typeUrl ?? "")));
    if (ext?.value) input.options = { typeUrl: ext.value.typeUrl ?? "", value: ext.value.value ?? new Uint8Array() };
    return input;
  }
  const options = decodeAny(bytes);
  return options ? { options } : {};
}

/** Decodes an optional options `Any` (stdin of `-info`); undefined when empty. */
export function decodeOptionsAny(bytes: Uint8Array): AnyMessage | undefined {
  return decodeAny(bytes);
}

/** Reads a string or boolean value of a top-level key from a TOML table (enough for runc option tables). */
function tomlString(toml: string, key: string): string | undefined {
  const re = new RegExp(`^\\s*"?${key}"?\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|'([^']*)')`, "m");
  const m = re.exec(toml);
  if (!m) return undefined;
  if (m[2] !== undefined) return m[2];
  try {
    return JSON.parse(`"${m[1] ?? ""}"`) as string;
  } catch {
    return m[1];
  }
}

function runtimeOptionsToml(opts: runtimeoptions.v1.Options): string {
  if (opts.configPath) {
    try {
      return readFileSync(opts.configPath, "utf8");
    } catch {
      return "";
    }
  }
  return Buffer.from(opts.configBody).toString("utf8");
}

/**
 * Extracts `shim_cgroup` and the runtime binary from any of the three option types. Unknown types and
 * undecodable values give empty strings: options are advisory for `start`.
 */
export function shimOptions(options: AnyMessage | undefined): ShimOptions {
  const out: ShimOptions = { shimCgroup: "", binaryName: "" };
  if (!options) return out;
  try {
    switch (typeName(options.typeUrl)) {
      case RUNC_OPTIONS: {
        const o = containerd.runc.v1.Options.decode(options.value);
        return { shimCgroup: o.shimCgroup, binaryName: o.binaryName };
      }
      case LINUX_CREATE_OPTIONS: {
        const o = containerd.linux.runc.CreateOptions.decode(options.value);
        return { shimCgroup: o.shimCgroup, binaryName: "" };
      }
      case RUNTIME_OPTIONS: {
        const o = runtimeoptions.v1.Options.decode(options.value);
        const toml = runtimeOptionsToml(o);
        const out: ShimOptions = { shimCgroup: tomlString(toml, "ShimCgroup") ?? "", binaryName: tomlString(toml, "BinaryName") ?? "" };
        if (o.configPath) out.configPath = o.configPath;
        return out;
      }
      default:
        return out;
    }
  } catch {
    return out;
  }
}
