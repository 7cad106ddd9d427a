/**
 * Close-once ownership of a raw fd (pipe ends, FIFO keep-alive ends, the pty master). A number is closed
 * through its one {@link OwnedFd}, at most once: a second `close()` never reaches close(2), so it cannot
 * close whatever file reused the number in between. Handing the number to a stream that closes it itself
 * (`take()`) ends our ownership. A close(2) that fails anyway (EBADF: someone else closed our number) is
 * logged as a warning, never thrown: close paths run in event callbacks, where a throw would not reach
 * a request.
 */
import { closeSync } from "node:fs";
import { ShimError } from "../errdefs.js";
import type { Logger } from "../log.js";

export class OwnedFd {
  private n: number;

  constructor(
    fd: number,
    private readonly log?: Logger,
  ) {
    this.n = fd;
  }

  /** The number while we own it; throws once it was closed or taken (a use after close). */
  get fd(): number {
    if (this.n < 0) throw new ShimError("Internal", `Cannot use fd: already closed or handed over`);
    return this.n;
  }

  /** Whether we still own the number. */
  get owned(): boolean {
    return this.n >= 0;
  }

  /** Hands the number to a new owner (a stream that closes it); close() does nothing from then on. */
  take(): number {
    const fd = this.fd;
    this.n = -1;
    return fd;
  }

  /** Closes the number if we still own it. Idempotent; never throws. */
  close(): void {
    if (this.n < 0) return;
    const fd = this.n;
    this.n = -1;
    try {
      closeSync(fd);
    } catch (err) {
      this.log?.warn("fd closed by someone else before its owner", { fd, error: err });
    }
  }
}
