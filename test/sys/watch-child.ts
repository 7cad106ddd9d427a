// Run as a script by watch.test.ts: an eventfd watched and never signalled (its watch unref'd, as EventFd
// does). With the argument "close" the eventfd is closed right after. The process must then exit by itself.
// Prints how many poll Workers ran (Bun).
import { EventFd } from "../../src/sys/index.js";
import { watchStats } from "../../src/sys/bun/watch.js";

const efd = EventFd.create();
efd.onSignal(() => process.stdout.write("unexpected signal\n"));
if (process.argv[2] === "close") efd.close();
process.stdout.write(`${JSON.stringify({ workers: watchStats.workers })}\n`);
