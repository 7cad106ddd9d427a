// Folder src/shim/packaging:
// Owns: how the program is packaged and started: SEA facts, the embedded koffi, the Node environment the
//   launcher moved aside.
// Must not import: cgroups, gen, runc, sandbox, shim/config, shim/daemon, shim/diagnostics, shim/entry,
//   shim/events, shim/invocation, shim/manager, shim/socket, shim/spare, stdio, sys, task, ttrpc.

/**
 * NODE_EXTRA_CA_CERTS makes every Node start read and parse a CA bundle before any of our code runs:
 * about 35 ms per start on these machines (Node 20), paid by `start`, the daemon and `delete`, and a
 * warning on stderr when the file is missing, which would end up in the address containerd reads from
 * `start`'s combined output. The shim opens no TLS connection, so its Node processes start without it:
 * the launcher (bin/) and the daemon spawn move it to {@link SAVED_CA_ENV}, and {@link restoreNodeEnv}
 * puts it back into process.env, so what the shim runs (runc, logging binaries) sees it unchanged.
 */

/** Where NODE_EXTRA_CA_CERTS waits while a shim Node process starts. */
export const SAVED_CA_ENV = "SHIM_TS_EXTRA_CA_CERTS";
const CA_ENV = "NODE_EXTRA_CA_CERTS";

/** Moves a saved NODE_EXTRA_CA_CERTS back into `env` (process.env by default). */
export function restoreNodeEnv(env: NodeJS.ProcessEnv = process.env): void {
  const saved = env[SAVED_CA_ENV];
  if (saved === undefined) return;
  delete env[SAVED_CA_ENV];
  if (env[CA_ENV] === undefined) env[CA_ENV] = saved;
}

/** A copy of `env` for starting a shim Node process: NODE_EXTRA_CA_CERTS moved aside. */
export function nodeBootEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  const ca = out[CA_ENV];
  if (ca !== undefined) {
    out[SAVED_CA_ENV] = ca;
    delete out[CA_ENV];
  }
  return out;
}
