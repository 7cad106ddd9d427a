/**
 * The pod files CRI bind-mounts into every container of a pod: `<CRI root>/sandboxes/<id>/hostname`,
 * `hosts` and `resolv.conf` (protocol.md §11 item 16). containerd's podsandbox controller writes them in
 * its own mode; in shim mode the sandbox controller is this shim, so it writes them the same way.
 *
 * Facts mirrored from containerd 1.7.24 (`pkg/cri/sbserver/podsandbox/sandbox_run_linux.go`,
 * `setupSandboxFiles`, `parseDNSOptions`) and 2.1.9 (`internal/cri/server/podsandbox/`, same code):
 * - `hostname`: the pod's hostname, else the node's (for any network mode), plus "\n";
 * - `hosts`: a copy of the host's /etc/hosts, for host-network and pod-network pods alike (kubelet
 *   manages a pod's /etc/hosts itself, through a CRI mount that takes precedence);
 * - `resolv.conf`: from `dns_config` when it is set (even empty), else a copy of the host's
 *   /etc/resolv.conf;
 * - directory mode 0755, files 0644; the whole sandbox directory is removed at shutdown (the
 *   podsandbox controller's Shutdown does; in shim mode nobody else does).
 * 1.7 bind-mounts `hosts` and `resolv.conf` whether they exist or not (and creates a missing source as
 * a directory); 2.x and 1.7 mount `hostname`, and 2.x all three, only when the file exists.
 */
import { chmod, copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { failedPrecondition } from "../errdefs.js";
import type { PodSandboxConfig } from "./config.js";

/** A CRI `DNSConfig`, as protobufjs decodes it. */
export interface DnsConfig {
  servers?: string[] | null;
  searches?: string[] | null;
  options?: string[] | null;
}

/** The host files the pod files are copied from (containerd's constants). */
export const HOST_HOSTS = "/etc/hosts";
export const HOST_RESOLV_CONF = "/etc/resolv.conf";

/** Mode of the pod's directory and of each file in it (before the umask, as containerd). */
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;

/** The paths CRI mounts for sandbox `id` under CRI root `criRoot`. */
export interface PodFilePaths {
  dir: string;
  hostname: string;
  hosts: string;
  resolvConf: string;
}

/** `<criRoot>/sandboxes/<id>` and the three files in it (containerd's getSandboxRootDir & co). */
export function podFilePaths(criRoot: string, id: string): PodFilePaths {
  const dir = path.join(criRoot, "sandboxes", id);
  return { dir, hostname: path.join(dir, "hostname"), hosts: path.join(dir, "hosts"), resolvConf: path.join(dir, "resolv.conf") };
}

/**
 * resolv.conf text of a `dns_config`: a `search` line, one `nameserver` line per server, an `options`
 * line, each only when it has values, in that order. All empty gives "" (containerd's parseDNSOptions).
 */
export function resolvConfContent(dns: DnsConfig): string {
  const searches = dns.searches ?? [];
  const servers = dns.servers ?? [];
  const options = dns.options ?? [];
  let out = "";
  if (searches.length > 0) out += `search ${searches.join(" ")}\n`;
  for (const s of servers) out += `nameserver ${s}\n`;
  if (options.length > 0) out += `options ${options.join(" ")}\n`;
  return out;
}

/** The text of `hostname`: the pod's hostname, else `nodeHostname`, and a newline. */
export function hostnameContent(config: PodSandboxConfig, nodeHostname: string): string {
  const name = config.hostname ?? "";
  return `${name === "" ? nodeHostname : name}\n`;
}

/** Where the host's files come from; tests point these elsewhere. */
export interface HostFiles {
  hosts?: string;
  resolvConf?: string;
  /** The node's hostname; default `os.hostname()` (the kernel's, as Go's `os.Hostname`). */
  hostname?: () => string;
}

function reason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
}

async function step(what: string, file: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw failedPrecondition(`Cannot ${what} "${file}": ${reason(err)}`, { cause: err });
  }
}

async function writeText(file: string, text: string): Promise<void> {
  await step("write the pod file", file, async () => {
    await writeFile(file, text, { mode: FILE_MODE });
    await chmod(file, FILE_MODE);
  });
}

async function copyText(from: string, to: string): Promise<void> {
  await step("copy the host's file", from, async () => {
    await copyFile(from, to);
    await chmod(to, FILE_MODE);
  });
}

/**
 * Writes `hostname`, `hosts` and `resolv.conf` of pod `config` into `paths.dir` (created if missing).
 * Fails with FailedPrecondition naming the file; whatever it wrote is removed again then.
 */
export async function writePodFiles(paths: PodFilePaths, config: PodSandboxConfig, host: HostFiles = {}): Promise<void> {
  await step("create the pod directory", paths.dir, () => mkdir(paths.dir, { recursive: true, mode: DIR_MODE }));
  try {
    const node = host.hostname ?? os.hostname;
    await writeText(paths.hostname, hostnameContent(config, node()));
    await copyText(host.hosts ?? HOST_HOSTS, paths.hosts);
    // Present but empty still counts as set (Go: GetDnsConfig() != nil).
    if (config.dnsConfig != null) await writeText(paths.resolvConf, resolvConfContent(config.dnsConfig));
    else await copyText(host.resolvConf ?? HOST_RESOLV_CONF, paths.resolvConf);
  } catch (err) {
    await removePodFiles(paths).catch(() => undefined);
    throw err;
  }
}

/** Removes the pod's directory with everything in it (also what CRI created there). Idempotent. */
export async function removePodFiles(paths: PodFilePaths): Promise<void> {
  await step("remove the pod directory", paths.dir, () => rm(paths.dir, { recursive: true, force: true }));
}
