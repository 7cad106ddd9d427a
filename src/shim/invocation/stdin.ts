/**
 * Reads all of stdin for `start` and `-info`. containerd gives a pipe or `/dev/null`; a terminal (manual
 * runs) counts as empty. Blocking reads are used while they work; a non-blocking stdin (EAGAIN) falls
 * back to the stream API so no byte already read is lost.
 */
import { fstatSync, readSync } from "node:fs";
import { isatty } from "node:tty";

const CHUNK = 64 * 1024;
/** Runtime options are small; anything bigger is not what containerd sends. */
const LIMIT = 4 * 1024 * 1024;

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

async function readRest(chunks: Buffer[], total: number): Promise<Buffer> {
  for await (const chunk of process.stdin) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > LIMIT) throw new Error(`Cannot read stdin: more than ${LIMIT} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Reads fd 0 to EOF. A closed fd 0 or a terminal gives an empty buffer. */
export async function readStdin(): Promise<Buffer> {
  try {
    fstatSync(0);
  } catch {
    return Buffer.alloc(0);
  }
  if (isatty(0)) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(CHUNK);
    let n: number;
    try {
      n = readSync(0, buf, 0, CHUNK, null);
    } catch (err) {
      const code = errnoCode(err);
      if (code === "EAGAIN") return readRest(chunks, total);
      if (code === "EOF" || code === "EBADF") break;
      throw err;
    }
    if (n === 0) break;
    total += n;
    if (total > LIMIT) throw new Error(`Cannot read stdin: more than ${LIMIT} bytes`);
    chunks.push(buf.subarray(0, n));
  }
  return Buffer.concat(chunks);
}
