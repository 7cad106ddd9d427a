/** A real pty for the console suites: a Python stand-in for `runc init` that sends the master over a console socket. */
import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import { ConsoleSocket } from "../../src/stdio/index.js";
import { deadline, requireProgram } from "./helpers.js";

/** Makes a pty, sends the master over the console socket (argv[1]), then runs the body with the slave as `s`. */
const PRELUDE = `
import os, pty, socket, sys, fcntl, termios, struct
m, s = pty.openpty()
name = os.ttyname(s)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
socket.send_fds(c, [b"/dev/ptmx"], [m])
c.close(); os.close(m)
def readline(fd):
    line = b""
    while not line.endswith(b"\\n"):
        chunk = os.read(fd, 100)
        if not chunk: break
        line += chunk
    return line
`;

/**
 * Starts `body` under Python with a pty and receives its master. The child's stdout is ours to read when
 * `stdout` is "pipe" (else inherited).
 */
export async function startPty(t: { after(fn: () => void): void }, body: string, stdout: "pipe" | "inherit" = "inherit") {
  requireProgram("python3");
  const cs = await ConsoleSocket.create();
  t.after(() => cs.close());
  const child = spawn("python3", ["-c", PRELUDE + body, cs.path], { stdio: ["ignore", stdout, "inherit"] });
  t.after(() => child.kill("SIGKILL"));
  const master = await deadline(cs.receiveMaster(), "pty master");
  return { cs, child, master };
}

/** Resolves with the text a stream has yielded once it contains `want`. */
export function textUntil(s: Readable, want: string, what: string): Promise<string> {
  let text = "";
  return deadline(
    new Promise<string>((resolve) => {
      const on = (c: Buffer) => {
        text += c.toString();
        if (!text.includes(want)) return;
        s.off("data", on);
        resolve(text);
      };
      s.on("data", on);
    }),
    what,
  );
}

export type { ChildProcess };
