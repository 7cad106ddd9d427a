/**
 * The shim daemon (shared/protocol.md §2.4): the composition root. Becomes a child subreaper, logs to the
 * bundle's `log` FIFO, serves the Task and Sandbox services over ttrpc on the socket `start` passed as fd 3,
 * and exits once either service was asked to shut down and neither holds anything, or on SIGTERM/SIGINT.
 */
import { fstatSync } from "node:fs";
import net from "node:net";
import type { Logger } from "../../log.js";
import { Reaper, setChildSubreaper } from "../../sys/index.js";
import { SANDBOX_SERVICE, SandboxService } from "../../sandbox/index.js";
import { TaskService } from "../../task/index.js";
import { Server } from "../../ttrpc/index.js";
import { daemonLingerMs, daemonLogLevel, resolveShimConfig } from "../config/config.js";
import { onDumpSignal, type DumpSources } from "../diagnostics/dump.js";
import type { Flags } from "../invocation/flags.js";
import { openLogFifo } from "../diagnostics/logfifo.js";
import { RemotePublisher } from "../events/publisher.js";
import { GROUP_SERVICE, GroupMembers, releasingAfter } from "../socket/join.js";
import { Linger } from "./linger.js";
import { Shutdown } from "./shutdown.js";
import { bindSocket, removeSocket, requireSameUser } from "../socket/socket.js";
import { BundleScope } from "../../bundle-scope.js";
import { containerd as sandboxApi } from "../../gen/sandbox.js";
import { containerd as taskApi } from "../../gen/task.js";
import type { Method } from "../../ttrpc/index.js";

const T = taskApi.task.v2;
const S = sandboxApi.runtime.sandbox.v1;

/** The service names the Task methods are registered under (protocol.md §4.1, §11 items 6 and 13). */
export const TASK_SERVICES = ["containerd.task.v2.Task", "containerd.task.v3.Task"] as const;

/** The fd on which `start` hands over the listening socket. */
export const LISTENER_FD = 3;

/** Budget for answering in-flight calls once shutdown begins. */
const DRAIN_CALLS_MS = 2000;
/** Budget for delivering queued events at shutdown. */
const DRAIN_EVENTS_MS = 5000;

function isSocketFd(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

/** Listens on the inherited fd 3 if it is a socket, else binds `socketPath` itself (manual runs). */
export async function openListener(socketPath: string): Promise<net.Server> {
  if (isSocketFd(LISTENER_FD)) {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen({ fd: LISTENER_FD }, () => {
        server.off("error", reject);
        resolve(server);
      });
    });
  }
  if (socketPath === "") throw new Error(`Cannot serve: fd ${LISTENER_FD} is not a socket and no -socket was given`);
  const bound = await bindSocket(socketPath);
  if (bound === "live") throw new Error(`Cannot serve on "${socketPath}": another shim is listening there`);
  return bound;
}

function guardProcess(log: Logger): void {
  process.on("uncaughtException", (err) => log.error("uncaught exception", { error: err, stack: err.stack }));
  process.on("unhandledRejection", (reason) => log.error("unhandled rejection", { error: reason }));
  // The daemon runs in its own session; a stray SIGHUP must not end it (Node's default would).
  process.on("SIGHUP", () => log.debug("ignoring SIGHUP"));
}

/** A daemon that waited as a warm spare (src/shim/spare/) before it was given its pod. */
export interface SpareOrigin {
  bootedAt: number;
  adoptedAt: number;
}

/**
 * Runs the daemon until shutdown, then exits the process with status 0. Returns once it serves.
 * `listener`: the pod's socket, already listening (a spare bound it); else fd 3 or `flags.socket`.
 */
export async function serve(flags: Flags, opts: { listener?: net.Server; spare?: SpareOrigin } = {}): Promise<void> {
  const level = daemonLogLevel(process.env, flags.debug);
  const { log, sink: logSink } = openLogFifo(process.cwd(), level, { id: flags.id, namespace: flags.namespace });
  guardProcess(log);
  // First thing: until a SIGUSR1 listener exists, Node answers SIGUSR1 by opening its inspector port.
  let dumpSources: DumpSources | undefined;
  onDumpSignal(log, () => dumpSources);
  const shutdown = new Shutdown(log);
  const exit = (reason: string): void => {
    void shutdown.stop(reason).finally(() => process.exit(0));
  };

  setChildSubreaper();
  const reaper = new Reaper({ log: log.child({ module: "reaper" }) });
  reaper.start();
  shutdown.onStop("reaper", () => reaper.stop());

  const publisher = new RemotePublisher({
    address: process.env["TTRPC_ADDRESS"] ?? "",
    namespace: flags.namespace,
    log: log.child({ module: "events" }),
  });
  shutdown.onStop("events", async (signal) => {
    await publisher.drain({ signal });
    publisher.close();
  }, DRAIN_EVENTS_MS);

  const loadConfig = (configPath: string | undefined) => resolveShimConfig(process.env, configPath);
  // Taken now: the bundle the daemon was started in may be removed while it serves others.
  const bundleScope = BundleScope.forDaemon(process.cwd(), flags.namespace);
  const task = new TaskService({ namespace: flags.namespace, reaper, publisher, log, shimPid: process.pid, loadConfig, bundleScope });
  const ttrpcLog = log.child({ module: "ttrpc" });
  const server = new Server({ log: ttrpcLog, authorize: requireSameUser(ttrpcLog) });
  const sandbox = new SandboxService({ namespace: flags.namespace, reaper, log: log.child({ module: "sandbox" }), containerdAddress: flags.address, bundleScope });
  // Ids that joined through `start` (join.ts): held until their Create or Shutdown settled, so the daemon
  // cannot exit between a `start` that found it live and containerd's Create.
  let requested = false;
  const members = new GroupMembers(() => { if (requested) linger.idle(); });
  // Namespace grouping: once it holds nothing, the daemon serves on for a while before it exits (linger.ts).
  const linger = new Linger(daemonLingerMs(process.env), () => task.size === 0 && sandbox.size === 0 && members.size === 0, exit,
    (ms) => log.info("holding nothing: lingering before exit", { linger_ms: ms }));
  shutdown.onStop("linger", () => linger.stop());
  // A new member or container ends a linger: the next time the daemon holds nothing, a whole one starts again.
  const busying = (m: Method): Method => linger.wrap(m, () => requested);
  // The id this daemon was started for is a member too: another group member may come and go (and ask for
  // Shutdown) before containerd's Create for it arrives.
  if (flags.id !== "") members.hold(flags.id);
  const methods = task.methods();
  methods["Create"] = releasingAfter(busying(methods["Create"]!), members, (p) => T.CreateTaskRequest.decode(p).id);
  methods["Shutdown"] = releasingAfter(methods["Shutdown"]!, members, (p) => T.ShutdownRequest.decode(p).id);
  for (const name of TASK_SERVICES) server.register(name, methods);
  const sandboxMethods = sandbox.methods();
  sandboxMethods["CreateSandbox"] = releasingAfter(busying(sandboxMethods["CreateSandbox"]!), members, (p) => S.CreateSandboxRequest.decode(p).sandboxId);
  sandboxMethods["ShutdownSandbox"] = releasingAfter(sandboxMethods["ShutdownSandbox"]!, members, (p) => S.ShutdownSandboxRequest.decode(p).sandboxId);
  server.register(SANDBOX_SERVICE, sandboxMethods);
  const groupMethods = members.methods(() => shutdown.requested);
  groupMethods["Join"] = busying(groupMethods["Join"]!);
  server.register(GROUP_SERVICE, groupMethods);

  dumpSources = { task, sandbox, server, publisher, spare: opts.spare, linger };
  // A shared daemon (namespace grouping) outlives the bundle it was started in: its log moves to another's FIFO.
  if (logSink) {
    logSink.fallbacks = () => [...task.snapshot().containers.map((c) => c.bundle), ...sandbox.snapshot().sandboxes.map((s) => s.bundle)];
  }

  const listener = opts.listener ?? await openListener(flags.socket);
  server.serve(listener);
  // Registered last, so it runs first: in-flight calls (the Shutdown RPC itself) are answered before exit.
  shutdown.onStop("ttrpc", (signal) => server.shutdown({ signal }), DRAIN_CALLS_MS);
  // Runs before the drain: a pending WaitSandbox would otherwise hold it for its whole budget.
  shutdown.onStop("sandbox waits", () => sandbox.close());
  // Unlink before the listener closes, so a new `start` for this group binds a fresh socket.
  if (flags.socket !== "") shutdown.onStop("socket", () => removeSocket(flags.socket));

  // A shim serving a pod holds the sandbox and its containers: it goes when a Shutdown (Task) or
  // ShutdownSandbox was asked for and neither service holds anything any more, nor is a joined id pending
  // (at once, or after its linger with namespace grouping).
  const onRequested = (): void => {
    requested = true;
    linger.idle();
  };
  task.onShutdownRequested(onRequested);
  sandbox.onShutdownRequested(onRequested);
  process.on("SIGTERM", () => exit("SIGTERM"));
  process.on("SIGINT", () => exit("SIGINT"));
  const warm = opts.spare && { spare_idle_ms: opts.spare.adoptedAt - opts.spare.bootedAt };
  log.info("shim serving", { pid: process.pid, socket: flags.socket, linger_ms: linger.lingerMs || undefined, ...warm });
}
