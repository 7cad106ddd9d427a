// Deadline-based waiting for tests: poll a condition, or bound a promise. Never a fixed sleep.
import { setTimeout as delay } from "node:timers/promises";

/** Options for {@link waitFor}. `what` names the condition in the timeout error. */
export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  what?: string;
  signal?: AbortSignal;
}

/**
 * Polls `cond` until it returns a truthy value (which is returned) or the deadline passes (throws,
 * naming `what` and the last error `cond` threw, if any). `cond` may be async; errors count as "not yet".
 */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
      lastErr = undefined;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr instanceof Error ? `: last error: ${lastErr.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? "condition"}${why}`);
    }
    await delay(intervalMs, undefined, { signal: opts.signal });
  }
}

/** Resolves like `p`, or rejects after `ms` with an error naming `what`. The timer never keeps the loop alive. */
export function withTimeout<T>(p: Promise<T>, ms: number, what = "operation"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
