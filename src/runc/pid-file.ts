/** Reading the pid files runc writes (`--pid-file`): decimal pid, no newline, written atomically by rename. */
import { readFile } from "node:fs/promises";
import { ShimError } from "../errdefs.js";

// Linux caps pid_max at 2^22.
const PID_MAX = 4_194_304;

/**
 * Returns the pid in the file at `path`. runc renames the file into place before it returns, so a
 * plain read after `create`/`exec`/`restore` succeeded is enough. Throws ShimError Internal when the
 * file cannot be read or does not hold a positive decimal pid.
 */
export async function readPidFile(path: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ShimError("Internal", `Cannot read pid file "${path}": ${code}`, { cause: err });
  }
  return parsePid(text, path);
}

/** Parses pid file content (surrounding whitespace tolerated); throws ShimError Internal if invalid. */
export function parsePid(text: string, path = "<pid file>"): number {
  const t = text.trim();
  const pid = /^[1-9][0-9]{0,6}$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(pid) || pid > PID_MAX) {
    throw new ShimError("Internal", `Cannot parse pid file "${path}": ${JSON.stringify(t.slice(0, 32))} is not a pid`);
  }
  return pid;
}
