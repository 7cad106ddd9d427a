/**
 * The warm spare's side (see protocol.ts): a daemon process with every module loaded (importing this file
 * loads serve.ts and all it uses) that serves no pod yet. It listens on its private socket and waits for
 * one Adopt. Adopted, it binds the pod's socket, takes the pod's id, bundle (cwd, log FIFO), log level and
 * ttrpc address, and becomes the ordinary daemon of that pod (daemon/serve.ts); `start` then places it
 * (cgroup, OOM score) as it would a cold daemon. It serves exactly one pod, like any pod-mode daemon.
 *
 * It exits, removing its socket first: after its idle time, when containerd's address stops answering,
 * on SIGTERM/SIGINT, when asked by another build or with other Node flags, and when another spare holds
 * the socket already (at most one per containerd address and namespace: the socket is the lock).
 *
 * Owns: the spare process until adoption. May import shim/daemon, shim/socket, shim/config,
 * shim/diagnostics, shim/invocation, shim/packaging. Must not import shim/manager.
 */
import { lstatSync, rmSync, writeFileSync } from "node:fs";
import type net from "node:net";
import { setChildSubreaper } from "../../sys/index.js";
import { daemonLogLevel, DEFAULT_WARM_IDLE_MS, WARM_IDLE_ENV, DAEMON_LOG_LEVEL_ENV } from "../config/config.js";
import { serve } from "../daemon/serve.js";
import { openLogFifo } from "../diagnostics/logfifo.js";
import type { Flags } from "../invocation/flags.js";
import { PACKAGED } from "../packaging/packaged.js";
import { bindSocket, probeSocket } from "../socket/socket.js";
import { buildId, readLine, SPARE_NODE_FLAGS_ENV, sparePidFile, type AdoptAnswer, type AdoptRequest } from "./protocol.js";

/** How often the spare checks that containerd's address still answers. */
const CONTAINERD_CHECK_MS = 2000;

function ownNodeFlags(): string {
  const flags = process.env[SPARE_NODE_FLAGS_ENV];
  delete process.env[SPARE_NODE_FLAGS_ENV]; // not for runc and what it runs
  return flags ?? "";
}

function valid(v: unknown): v is AdoptRequest {
  const r = v as Partial<AdoptRequest> | null;
  return typeof r === "object" && r !== null && typeof r.build === "string" && typeof r.id === "string" && r.id !== "" &&
    typeof r.bundle === "string" && r.bundle.startsWith("/") && typeof r.socket === "string" && r.socket.startsWith("/") &&
    typeof r.debug === "boolean" && Array.isArray(r.nodeFlags) && r.nodeFlags.every((f) => typeof f === "string");
}

/** Runs the spare until it is adopted (then it is the pod's daemon) or exits. */
export async function runSpare(flags: Flags): Promise<void> {
  const bootedAt = Date.now();
  const level = daemonLogLevel(process.env, flags.debug);
  // Until adopted, lines go to the FIFO of the bundle whose `start` spawned it (dropped once that pod is gone).
  const fifo = openLogFifo(flags.bundle || "/nonexistent", level, { spare: "true", namespace: flags.namespace });
  const log = fifo.log;
  const idleMs = Number(process.env[WARM_IDLE_ENV]) || DEFAULT_WARM_IDLE_MS;
  const build = buildId(PACKAGED !== undefined ? process.execPath : undefined);
  const spareSocket = flags.spare;
  const nodeFlags = ownNodeFlags();
  setChildSubreaper(); // also loads the native bindings now rather than at adoption
  const bound = await bindSocket(spareSocket).catch(() => undefined);
  if (bound === undefined || bound === "live") {
    log.debug("another spare serves this containerd and namespace, exiting", { socket: spareSocket });
    process.exit(0);
  }
  // Only the spare that holds the socket names itself in the pid file (a loser writing it first would leave
  // the file naming a dead pid, and a hung winner could then not be killed). Written before this tick ends,
  // so before any adoption request is read.
  writeFileSync(sparePidFile(spareSocket), String(process.pid), { mode: 0o600 });
  const listener: net.Server = bound;
  const ino = lstatSync(spareSocket).ino;
  let state: "idle" | "adopting" | "retired" = "idle";

  /** Removes the socket (only if still ours) and pid file, and stops waiting. */
  const retire = (): void => {
    if (state === "retired") return;
    state = "retired";
    clearTimeout(idle);
    clearInterval(watch);
    process.off("SIGUSR1", dump);
    try {
      if (lstatSync(spareSocket).ino === ino) rmSync(spareSocket, { force: true });
    } catch {
      // already gone
    }
    rmSync(sparePidFile(spareSocket), { force: true });
    listener.close();
  };
  const exit = (reason: string): void => {
    log.info("spare exiting", { reason, idle_ms: Date.now() - bootedAt });
    retire();
    process.exit(0);
  };
  const idle = setTimeout(() => exit("idle"), idleMs);
  let failures = 0;
  const watch = setInterval(() => {
    void probeSocket(flags.address, 1000).then((live) => {
      failures = live ? 0 : failures + 1;
      if (failures >= 2 && state === "idle") exit("containerd is gone");
    });
  }, CONTAINERD_CHECK_MS);
  const dump = (): void => {
    log.info("state dump: spare", {
      pid: process.pid, socket: spareSocket, build, idle_ms: Date.now() - bootedAt, idle_limit_ms: idleMs,
      rss_mib: Math.round(process.memoryUsage().rss / 1048576), state,
    });
  };
  process.on("SIGUSR1", dump);
  const onTerm = (): void => exit("signal");
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onTerm);
  process.on("SIGHUP", () => {});

  const adoptOn = async (sock: net.Socket, req: AdoptRequest): Promise<AdoptAnswer> => {
    if (state !== "idle") return { ok: false, reason: "busy" };
    if (req.build !== build || JSON.stringify(req.nodeFlags) !== nodeFlags) {
      const reason = req.build !== build ? "build" : "flags";
      log.info("spare refusing adoption, exiting", { reason, id: req.id });
      retire();
      setImmediate(() => process.exit(0));
      return { ok: false, reason };
    }
    state = "adopting";
    const pod = await bindSocket(req.socket).catch(() => undefined);
    if (pod === "live" || pod === undefined) {
      state = "idle";
      return { ok: false, reason: pod === "live" ? "live" : "failed" };
    }
    retire();
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onTerm);
    try {
      fifo.close(); // the spare's logger drops lines from now on; the daemon opens the pod's FIFO
      process.chdir(req.bundle);
      if (req.ttrpcAddress) process.env["TTRPC_ADDRESS"] = req.ttrpcAddress;
      if (req.logLevel !== undefined) process.env[DAEMON_LOG_LEVEL_ENV] = req.logLevel;
      else delete process.env[DAEMON_LOG_LEVEL_ENV];
      const podFlags: Flags = { ...flags, id: req.id, bundle: "", socket: req.socket, debug: req.debug, spare: "" };
      await serve(podFlags, { listener: pod, spare: { bootedAt, adoptedAt: Date.now() } });
    } catch (err) {
      pod.close();
      rmSync(req.socket, { force: true });
      setImmediate(() => process.exit(1));
      return { ok: false, reason: `failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    return { ok: true, pid: process.pid };
  };
  listener.on("connection", (sock: net.Socket) => {
    sock.on("error", () => {});
    readLine(sock, (v) => {
      if (!valid(v)) return void sock.end(`${JSON.stringify({ ok: false, reason: "bad request" })}\n`);
      void adoptOn(sock, v).then((a) => {
        // `start` gave up (deadline) or died: it tells containerd nothing, so nobody will use this daemon.
        if (a.ok && sock.destroyed) process.kill(process.pid, "SIGTERM");
        else sock.end(`${JSON.stringify(a)}\n`);
      });
    }, () => sock.destroy());
  });
  log.debug("spare ready", { pid: process.pid, socket: spareSocket, boot_ms: Math.round(process.uptime() * 1000) });
}
