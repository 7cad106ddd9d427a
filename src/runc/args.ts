// Folder src/runc:
// Owns: the runc CLI client: command lines, spawning runc, parsing its output and pid files, and mapping its
//   failures to ShimError (the only place that branches on runc's message text).
// Must not import: cgroups, gen, sandbox, shim, stdio, task, ttrpc.

/**
 * Pure builders of runc command lines (protocol.md §8). Each returns the exact argv after the binary
 * name, without global flags (see `globalArgs`). No IO here, so every command line is unit-tested as data.
 */

/** Global flags of every runc call, in the order the runc shim passes them (§8.1). */
export interface GlobalFlags {
  /** `--root`: runc's state directory, `<root>/<namespace>`. */
  root: string;
  /** `--log`: the JSON log file runc writes errors to; chosen per call by the caller. */
  logFile: string;
  /** `--systemd-cgroup` when true. */
  systemdCgroup?: boolean;
  /** `--criu <path>`: the CRIU binary for checkpoint/restore (runtime option `criu_path`). */
  criu?: string;
}

/** Returns `--root <root> --log <logFile> --log-format json [--systemd-cgroup] [--criu <path>]`. */
export function globalArgs(g: GlobalFlags): string[] {
  const out = ["--root", g.root, "--log", g.logFile, "--log-format", "json"];
  if (g.systemdCgroup === true) out.push("--systemd-cgroup");
  if (g.criu !== undefined && g.criu !== "") out.push("--criu", g.criu);
  return out;
}

/** Flags of `runc create` (no `--detach`: create returns once `runc init` waits for start). */
export interface CreateFlags {
  bundle: string;
  pidFile: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
}

/** `create --bundle b --pid-file p [--console-socket s] [--no-pivot] [--no-new-keyring] <id>` */
export function createArgs(id: string, f: CreateFlags): string[] {
  const out = ["create", "--bundle", f.bundle, "--pid-file", f.pidFile];
  if (f.consoleSocket !== undefined) out.push("--console-socket", f.consoleSocket);
  if (f.noPivot === true) out.push("--no-pivot");
  if (f.noNewKeyring === true) out.push("--no-new-keyring");
  out.push(id);
  return out;
}

/** `start <id>` */
export function startArgs(id: string): string[] {
  return ["start", id];
}

/** Flags of `runc exec`; the process JSON is in `processFile`. */
export interface ExecFlags {
  processFile: string;
  pidFile: string;
  consoleSocket?: string;
}

/** `exec --process f [--console-socket s] --detach --pid-file p <id>` */
export function execArgs(id: string, f: ExecFlags): string[] {
  const out = ["exec", "--process", f.processFile];
  if (f.consoleSocket !== undefined) out.push("--console-socket", f.consoleSocket);
  out.push("--detach", "--pid-file", f.pidFile, id);
  return out;
}

/** `kill [--all] <id> <sig>`, the signal as a decimal number. */
export function killArgs(id: string, sig: number, all = false): string[] {
  return ["kill", ...(all ? ["--all"] : []), id, String(sig)];
}

/** `delete [--force] <id>` */
export function deleteArgs(id: string, force = false): string[] {
  return ["delete", ...(force ? ["--force"] : []), id];
}

/** `state <id>` */
export function stateArgs(id: string): string[] {
  return ["state", id];
}

/** `ps --format json <id>` */
export function psArgs(id: string): string[] {
  return ["ps", "--format", "json", id];
}

/** `pause <id>` */
export function pauseArgs(id: string): string[] {
  return ["pause", id];
}

/** `resume <id>` */
export function resumeArgs(id: string): string[] {
  return ["resume", id];
}

/** `update --resources=- <id>` (the LinuxResources JSON goes to stdin) */
export function updateArgs(id: string): string[] {
  return ["update", "--resources=-", id];
}

/** `events --stats <id>`: one stats event, then exit. */
export function statsArgs(id: string): string[] {
  return ["events", "--stats", id];
}

/** CRIU flags that both `runc checkpoint` and `runc restore` accept. */
export interface CriuFlags {
  imagePath?: string;
  workPath?: string;
  tcpEstablished?: boolean;
  extUnixSk?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
  /** `soft`, `full` or `strict`. */
  manageCgroupsMode?: string;
  emptyNs?: readonly string[];
  lazyPages?: boolean;
}

/** Flags only `runc checkpoint` accepts (runc 1.1 `restore` rejects them). */
export interface CheckpointFlags extends CriuFlags {
  parentPath?: string;
  pageServer?: string;
  /** Adds `--status-fd 3`; the caller must place the status fd at child fd 3. */
  statusFd3?: boolean;
  leaveRunning?: boolean;
}

/** Flags of `runc restore` beyond the CRIU ones. `--detach` and `-no-subreaper` are always sent. */
export interface RestoreFlags extends CriuFlags {
  bundle: string;
  pidFile: string;
  consoleSocket?: string;
  noPivot?: boolean;
}

/** `checkpoint [criu flags in §8.2 order] [--leave-running] <id>` */
export function checkpointArgs(id: string, f: CheckpointFlags): string[] {
  const out = ["checkpoint"];
  if (f.imagePath !== undefined) out.push("--image-path", f.imagePath);
  if (f.workPath !== undefined) out.push("--work-path", f.workPath);
  if (f.parentPath !== undefined) out.push("--parent-path", f.parentPath);
  if (f.tcpEstablished === true) out.push("--tcp-established");
  if (f.extUnixSk === true) out.push("--ext-unix-sk");
  if (f.shellJob === true) out.push("--shell-job");
  if (f.pageServer !== undefined) out.push("--page-server", f.pageServer);
  if (f.fileLocks === true) out.push("--file-locks");
  if (f.manageCgroupsMode !== undefined) out.push("--manage-cgroups-mode", f.manageCgroupsMode);
  for (const ns of f.emptyNs ?? []) out.push("--empty-ns", ns);
  if (f.lazyPages === true) out.push("--lazy-pages");
  if (f.statusFd3 === true) out.push("--status-fd", "3");
  if (f.leaveRunning === true) out.push("--leave-running");
  out.push(id);
  return out;
}

/** `restore [criu flags] --detach --pid-file p [--console-socket s] [--no-pivot] -no-subreaper --bundle b <id>` */
export function restoreArgs(id: string, f: RestoreFlags): string[] {
  const out = ["restore"];
  if (f.imagePath !== undefined) out.push("--image-path", f.imagePath);
  if (f.workPath !== undefined) out.push("--work-path", f.workPath);
  if (f.tcpEstablished === true) out.push("--tcp-established");
  if (f.extUnixSk === true) out.push("--ext-unix-sk");
  if (f.shellJob === true) out.push("--shell-job");
  if (f.fileLocks === true) out.push("--file-locks");
  if (f.manageCgroupsMode !== undefined) out.push("--manage-cgroups-mode", f.manageCgroupsMode);
  for (const ns of f.emptyNs ?? []) out.push("--empty-ns", ns);
  if (f.lazyPages === true) out.push("--lazy-pages");
  out.push("--detach", "--pid-file", f.pidFile);
  if (f.consoleSocket !== undefined) out.push("--console-socket", f.consoleSocket);
  if (f.noPivot === true) out.push("--no-pivot");
  // Single dash is what go-runc sends; urfave/cli accepts it.
  out.push("-no-subreaper", "--bundle", f.bundle, id);
  return out;
}
