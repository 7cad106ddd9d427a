// Run as a script by watch.test.ts: an eventfd watched and never signalled (its watch unref'd, as EventFd
// does); the process must then exit by itself. Prints how many poll Workers ran (Bun).
import { EventFd } from "../../src/sys/index.js";
import { watchStats } from "../../src/sys/watch-bun.js";

const efd = EventFd.create();
efd.onSignal(() => process.stdout.write("unexpected signal\n"));
process.stdout.write(`${JSON.stringify({ workers: watchStats.workers })}\n`);
