// Which TCP ports a process listens on (from /proc), and a reader for a shim's `log` FIFO as containerd holds it.
import { closeSync, constants as fsc, openSync, readdirSync, readFileSync, readlinkSync, readSync } from "node:fs";
import { execFileSync } from "node:child_process";

/** `addr:port` (hex, as /proc shows them) of every TCP socket in LISTEN state that `pid` holds an fd on. */
export function tcpListeners(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const out: string[] = [];
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try { text = readFileSync(`/proc/${pid}/net/${table}`, "utf8"); } catch { continue; }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1], st is f[3] (0A = LISTEN), inode is f[9].
      if (f[3] === "0A" && f[9] !== undefined && inodes.has(f[9])) out.push(f[1] ?? "");
    }
  }
  return out;
}

/**
 * Creates the FIFO `path` and holds it open read-write and non-blocking, as containerd holds a bundle's
 * `log` FIFO, so a shim can open it for writing. `lines()` returns everything read so far.
 */
export function logFifo(path: string): { lines: () => string[]; close: () => void } {
  execFileSync("mkfifo", [path]);
  const fd = openSync(path, fsc.O_RDWR | fsc.O_NONBLOCK);
  let text = "";
  const buf = Buffer.alloc(65536);
  return {
    lines: () => {
      for (;;) {
        let n = 0;
        try { n = readSync(fd, buf, 0, buf.length, null); } catch { break; } // EAGAIN: nothing buffered
        if (n <= 0) break;
        text += buf.subarray(0, n).toString("utf8");
      }
      return text.split("\n").filter(Boolean);
    },
    close: () => closeSync(fd),
  };
}
