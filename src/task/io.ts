/**
 * Prepares a process's stdio before runc runs and finishes it afterwards: real pipes copied to and
 * from containerd's FIFOs, or a console socket whose pty master is copied once runc sends it.
 */
import { closeSync } from "node:fs";
import type { Logger } from "../log.js";
import { ConsoleSocket, copyConsole, openProcessIO } from "../stdio/index.js";
import type { IOHandle, StdioConfig } from "./process.js";

export type RuncStdio = [number | "ignore", number | "ignore", number | "ignore"];

/** Stdio between "before runc" and "after runc". */
export interface PreparedIO {
  readonly runcStdio: RuncStdio | undefined;
  readonly consoleSocket: string | undefined;
  /** After runc returned successfully: the handle that owns all fds from now on. */
  ready(opts: { signal?: AbortSignal }): Promise<IOHandle>;
  /** After runc failed: release everything. */
  abort(): void;
}

export interface IOOptions {
  id: string;
  ns: string;
  uid?: number;
  gid?: number;
  log?: Logger;
  registry?: { own(pid: number): void; disown(pid: number): void };
  signal?: AbortSignal;
}

/** Sets up stdio for one process per `stdio` (terminal or pipes). */
export async function prepareIO(stdio: StdioConfig, opts: IOOptions): Promise<PreparedIO> {
  const spec = { stdin: stdio.stdin, stdout: stdio.stdout, stderr: stdio.stderr, terminal: stdio.terminal };
  if (!stdio.terminal) {
    const io = await openProcessIO(spec, opts);
    return {
      runcStdio: io.runcStdio,
      consoleSocket: undefined,
      ready: async () => {
        io.afterStart();
        return io;
      },
      abort: () => io.close(),
    };
  }
  const socket = await ConsoleSocket.create();
  const master = socket.receiveMaster({ signal: opts.signal });
  master.catch(() => {}); // observed in ready(); abort() may leave it pending
  return {
    runcStdio: undefined,
    consoleSocket: socket.path,
    ready: async () => {
      try {
        return await copyConsole(await master, spec, opts);
      } finally {
        socket.close();
      }
    },
    abort: () => {
      socket.close();
      // runc may have sent the master before it failed: no console owns it, so it is closed here.
      void master.then(closeQuietly, () => {});
    },
  };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
