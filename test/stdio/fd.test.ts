// Close-once ownership of raw fds (src/stdio/fd.ts): a double close can neither close a file that reused
// the number nor pass unnoticed.
import assert from "node:assert/strict";
import { closeSync, fstatSync, openSync } from "node:fs";
import { test } from "node:test";
import { Logger, MemorySink } from "../../src/log.js";
import { OwnedFd } from "../../src/stdio/fd.js";
import { pipe2 } from "../../src/sys/index.js";

/** Opens /dev/null until a file holds `number` (the lowest free number is taken first); closes the rest. */
function reuse(number: number): number {
  const extra: number[] = [];
  try {
    for (let i = 0; i < 64; i++) {
      const fd = openSync("/dev/null", "r");
      if (fd === number) return fd;
      extra.push(fd);
    }
    throw new Error(`fd ${number} was not reused`);
  } finally {
    extra.forEach((fd) => closeSync(fd));
  }
}

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

test("a second close() leaves alone the file that took the number in between", () => {
  const [r, w] = pipe2();
  closeSync(w);
  const owner = new OwnedFd(r);
  owner.close();
  assert.equal(owner.owned, false);
  const other = reuse(r);
  owner.close();
  assert.ok(isOpen(other), "the file that reused the number is still open");
  closeSync(other);
});

test("a number closed behind its owner's back is logged as a warning at close(), not thrown or swallowed", () => {
  const [r, w] = pipe2();
  closeSync(r);
  const sink = new MemorySink();
  const owner = new OwnedFd(w, new Logger(sink, "info"));
  closeSync(w); // someone else's double close
  assert.doesNotThrow(() => owner.close());
  assert.equal(sink.lines.length, 1, "one line reported it");
  assert.match(sink.lines[0] ?? "", new RegExp(`level=warn .*fd=${w} .*EBADF`));
});

test("take() hands the number over: close() then leaves it open, and the owner refuses to use it", () => {
  const [r, w] = pipe2();
  closeSync(w);
  const owner = new OwnedFd(r);
  assert.equal(owner.fd, r);
  assert.equal(owner.take(), r);
  owner.close();
  assert.ok(isOpen(r), "the new owner still has it");
  assert.throws(() => owner.fd, /already closed or handed over/);
  closeSync(r);
});
