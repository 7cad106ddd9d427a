/**
 * The daemon's shutdown sequence: an AbortSignal for everything that should stop, plus a LIFO stack of
 * cleanup callbacks (Node 20 has no AsyncDisposableStack), each bounded by a timeout.
 */
import type { Logger } from "../../log.js";

/** A cleanup step. It receives a signal that aborts when its time budget is spent. */
export type StopCallback = (signal: AbortSignal) => void | Promise<void>;

interface Entry {
  name: string;
  fn: StopCallback;
  timeoutMs: number;
}

/** Runs registered callbacks in reverse order, once. `stop()` is idempotent and never throws. */
export class Shutdown {
  private readonly controller = new AbortController();
  private readonly entries: Entry[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  /** Aborted as soon as shutdown begins. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True once `stop()` was called. */
  get requested(): boolean {
    return this.running !== undefined;
  }

  /** Registers `fn` to run at stop, before everything registered earlier. */
  onStop(name: string, fn: StopCallback, timeoutMs = 5000): void {
    this.entries.push({ name, fn, timeoutMs });
  }

  /** Begins shutdown (or joins one in progress) and resolves when every callback finished or timed out. */
  stop(reason = "shutdown"): Promise<void> {
    this.running ??= this.run(reason);
    return this.running;
  }

  private async run(reason: string): Promise<void> {
    this.log.info("shutting down", { reason });
    this.controller.abort(new Error(`Shim is shutting down: ${reason}`));
    for (const e of this.entries.splice(0).reverse()) {
      // A ref'd timer (AbortSignal.timeout is unref'd): a hung step must not let the loop drain silently.
      const budget = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          timer = setTimeout(() => {
            const err = new Error(`Timed out after ${e.timeoutMs} ms`);
            budget.abort(err);
            reject(err);
          }, e.timeoutMs);
          Promise.resolve()
            .then(() => e.fn(budget.signal))
            .then(resolve, reject);
        });
      } catch (err) {
        this.log.warn("shutdown step failed", { step: e.name, error: err });
      } finally {
        clearTimeout(timer);
      }
    }
  }
}
