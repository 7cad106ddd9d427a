/**
 * Entry point of the shim binary. Imports only the flag parser; each action module is loaded on demand,
 * so `start` and `delete` (one Node startup per container) load no more than they need.
 */
import { writeSync } from "node:fs";
import { FlagError, parseFlags, USAGE, type Flags } from "../invocation/flags.js";
import { restoreNodeEnv } from "../packaging/nodeenv.js";

function writeAll(fd: number, text: string): void {
  const data = Buffer.from(text);
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
}

function fail(message: string): never {
  writeAll(2, message.endsWith("\n") ? message : `${message}\n`);
  process.exit(1);
}

/** Runs the shim with `argv` (without node and script). Exits the process when the action is done. */
export async function main(argv: readonly string[]): Promise<void> {
  restoreNodeEnv();
  let flags: Flags;
  try {
    flags = parseFlags(argv);
  } catch (err) {
    if (err instanceof FlagError) fail(`${err.message}\n${USAGE}`);
    throw err;
  }
  try {
    if (flags.help) {
      writeAll(1, USAGE);
      return;
    }
    if (flags.version) {
      const { versionText } = await import("./version.js");
      writeAll(1, versionText());
      return;
    }
    if (flags.info) {
      const { info } = await import("./info.js");
      await info(flags);
      return;
    }
    switch (flags.action) {
      case "start":
        await (await import("../manager/start.js")).start(flags);
        return;
      case "delete":
        await (await import("../manager/delete.js")).deleteAction(flags);
        return;
      case "serve":
        // Before the daemon's modules load (~150 ms): Node's default SIGUSR1 opens its inspector port.
        process.on("SIGUSR1", () => {});
        if (flags.spare !== "") await (await import("../spare/spare.js")).runSpare(flags);
        else await (await import("../daemon/serve.js")).serve(flags);
        return;
    }
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
}
