/** Shared helpers for the sys tests: root check and deadline waits (no sleeps). */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";

/** Fails the suite with a clear message when not root (prctl, mount and reaping need it). */
export function requireRoot(): void {
  assert.equal(process.getuid?.(), 0, "test/sys needs root (mount(2), subreaper); run the tests as root");
}

/** Resolves with the first value `register` hands to its callback, or rejects after `ms`. */
export function within<T>(ms: number, what: string, register: (done: (v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

/** Waits for a ChildProcess's exit with a deadline: [code, signal]. */
export function exitOf(child: ChildProcess, ms = 5000): Promise<[number | null, NodeJS.Signals | null]> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve([child.exitCode, child.signalCode]);
  return within(ms, `exit of pid ${child.pid}`, (done) => child.once("exit", (c, s) => done([c, s])));
}

/** Collects a stream's output until it ends, with a deadline. */
export function readAll(stream: NodeJS.ReadableStream, ms = 5000): Promise<string> {
  let out = "";
  stream.setEncoding("utf8");
  stream.on("data", (d: string) => (out += d));
  return within(ms, "end of output", (done) => stream.once("end", () => done(out)));
}
