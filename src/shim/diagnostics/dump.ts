// Folder src/shim/diagnostics:
// Owns: the daemon's SIGUSR1 state dump and the log FIFO to containerd.
// Must not import: cgroups, runc, shim/config, shim/daemon, shim/entry, shim/invocation, shim/manager,
//   shim/packaging, shim/socket, shim/spare, stdio, sys.

/**
 * The daemon's state dump on SIGUSR1 (docs/debugging.md). containerd's Go shims log a goroutine stack dump
 * at info level on SIGUSR1 (`dumpStacks` in containerd's pkg/shim); a JS stack of the one thread says
 * nothing, so this logs what the daemon holds instead: every container and exec, sandbox, ttrpc
 * connection and in-flight call, and the event queue. Each part is asked for a plain snapshot; nothing is
 * kept here, so one daemon serving several pods (SHIM_TS_GROUPING=namespace) dumps them all.
 *
 * Installing the listener also replaces Node's default SIGUSR1 action, which opens the inspector on
 * 127.0.0.1:9229: a root daemon must never offer a debugger port.
 */
import type { Fields, Logger } from "../../log.js";
import type { SandboxServiceSnapshot } from "../../sandbox/index.js";
import type { ContainerSnapshot, ProcessSnapshot, TaskSnapshot } from "../../task/index.js";
import type { ServerSnapshot } from "../../ttrpc/index.js";
import type { PublisherSnapshot } from "../events/publisher.js";

/** The parts of a daemon that can describe themselves. */
export interface DumpSources {
  task: { snapshot(): TaskSnapshot };
  sandbox: { snapshot(): SandboxServiceSnapshot };
  server: { snapshot(now?: number): ServerSnapshot };
  publisher: { snapshot(now?: number): PublisherSnapshot };
  /** Set when the daemon waited as a warm spare (src/shim/spare/) before it was adopted for its pod. */
  spare?: { bootedAt: number; adoptedAt: number } | undefined;
  /** The namespace daemon's linger (src/shim/daemon/linger.ts): `idleMs` while it serves on holding nothing. */
  linger?: { snapshot(now?: number): { lingerMs: number; idleMs?: number } } | undefined;
}

/** Everything one dump reports. */
export interface ShimDump {
  pid: number;
  uptimeMs: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Node's active handles and requests by type (sockets, pipes, timers...), the nearest to a goroutine list. */
  resources: Record<string, number>;
  task: TaskSnapshot;
  sandbox: SandboxServiceSnapshot;
  ttrpc: ServerSnapshot;
  events: PublisherSnapshot;
  /** How long the daemon waited as a warm spare before its pod came; absent for a daemon spawned for it. */
  spareIdleMs?: number;
  /** The configured linger (0: exits with its last pod) and, while it lingers, how long it has held nothing. */
  linger?: { lingerMs: number; idleMs?: number };
}

/** Asks every part for its snapshot. */
export function gatherDump(src: DumpSources, now: number = Date.now()): ShimDump {
  const mem = process.memoryUsage();
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  return {
    pid: process.pid,
    uptimeMs: Math.round(process.uptime() * 1000),
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    resources,
    task: src.task.snapshot(),
    sandbox: src.sandbox.snapshot(),
    ttrpc: src.server.snapshot(now),
    events: src.publisher.snapshot(now),
    ...(src.spare ? { spareIdleMs: src.spare.adoptedAt - src.spare.bootedAt } : {}),
    ...(src.linger ? { linger: src.linger.snapshot(now) } : {}),
  };
}

const MIB = 1024 * 1024;

function exitFields(p: Omit<ProcessSnapshot, "execId">): Fields {
  return p.exitedAt === undefined ? {} : { exit_status: p.exitStatus, exited_at: p.exitedAt };
}

function containerFields(c: ContainerSnapshot): Fields {
  return {
    container: c.id,
    bundle: c.bundle,
    status: c.status,
    pid: c.pid,
    ...exitFields(c),
    sandbox: c.sandboxId,
    oci_runtime: c.runtime,
    terminal: c.terminal || undefined,
    execs: c.execs.length,
    live_execs: c.liveExecs,
    exit_held: c.exitHeld,
  };
}

/**
 * Writes `dump` as info lines: a "state dump: begin" summary, one line per container, exec, sandbox,
 * connection, call and the event queue, then "state dump: end". One line per object keeps each write
 * small (the log FIFO drops what does not fit). Returns the number of lines.
 */
export function logDump(log: Logger, dump: ShimDump, seq = 1): number {
  const l = log.child({ dump: seq });
  const calls = dump.ttrpc.connections.reduce((n, c) => n + c.calls.length, 0);
  const execs = dump.task.containers.reduce((n, c) => n + c.execs.length, 0);
  let lines = 0;
  const line = (msg: string, fields: Fields): void => {
    l.info(`state dump: ${msg}`, fields);
    lines++;
  };
  line("begin", {
    pid: dump.pid,
    uptime_s: Math.round(dump.uptimeMs / 1000),
    rss_mib: Math.round(dump.rssBytes / MIB),
    heap_mib: Math.round(dump.heapUsedBytes / MIB),
    containers: dump.task.containers.length,
    execs,
    sandboxes: dump.sandbox.sandboxes.length,
    connections: dump.ttrpc.connections.length,
    calls,
    events_pending: dump.events.pending,
    shutdown_requested: dump.task.shutdownRequested || undefined,
    warm_spare_idle_ms: dump.spareIdleMs,
    linger_ms: dump.linger?.lingerMs || undefined,
    lingering_ms: dump.linger?.idleMs,
    resources: dump.resources,
  });
  for (const c of dump.task.containers) {
    line("container", containerFields(c));
    for (const e of c.execs) {
      line("exec", { container: c.id, exec: e.execId, status: e.status, pid: e.pid, ...exitFields(e), terminal: e.terminal || undefined, starting: e.starting });
    }
  }
  for (const id of dump.task.creating) line("container", { container: id, status: "creating" });
  for (const s of dump.sandbox.sandboxes) {
    const exit = s.exitedAt === undefined ? {} : { exit_status: s.exitStatus, exited_at: s.exitedAt };
    line("sandbox", { sandbox: s.id, state: s.state, pid: s.pid, bundle: s.bundle, netns: s.netns || undefined, ...exit });
  }
  for (const id of dump.sandbox.creating) line("sandbox", { sandbox: id, state: "creating" });
  for (const c of dump.ttrpc.connections) {
    line("connection", { conn: c.id, age_s: Math.round(c.ageMs / 1000), calls: c.calls.length });
    for (const call of c.calls) {
      line("call", { conn: c.id, stream: call.stream, method: `${call.service}/${call.method}`, age_ms: call.ageMs, deadline_answered: call.answered });
    }
  }
  const ev = dump.events;
  line("events", {
    address: ev.address,
    pending: ev.pending,
    topics: ev.topics.length > 0 ? ev.topics : undefined,
    oldest_ms: ev.pending > 0 ? ev.oldestMs : undefined,
    sending: ev.sending,
    connected: ev.connected,
    closed: ev.closed || undefined,
    dropped: ev.dropped,
  });
  line("end", { lines: lines + 1 });
  return lines;
}

/**
 * Installs the SIGUSR1 listener on `proc` now; each signal logs a dump of `sources()` (undefined while the
 * daemon is still starting). Returns a function that removes the listener.
 */
export function onDumpSignal(log: Logger, sources: () => DumpSources | undefined, proc: NodeJS.EventEmitter = process): () => void {
  let seq = 0;
  const handler = (): void => {
    seq++;
    const src = sources();
    if (src === undefined) {
      log.info("state dump: daemon still starting", { dump: seq });
      return;
    }
    try {
      logDump(log, gatherDump(src), seq);
    } catch (err) {
      log.error("state dump failed", { dump: seq, error: err });
    }
  };
  proc.on("SIGUSR1", handler);
  return () => proc.off("SIGUSR1", handler);
}
