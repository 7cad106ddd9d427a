/**
 * The one table of gRPC status numbers. Errors cross the wire as `google.rpc.Status`; everything else in
 * the shim speaks `ShimError` codes.
 */
import { ShimError, codeOf, type Code } from "../errdefs.js";

/** gRPC code of each error class (google.rpc.Code). */
const GRPC = {
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
} as const satisfies Record<Code, number>;

const FROM_GRPC = new Map<number, Code>(Object.entries(GRPC).map(([k, v]) => [v, k as Code]));

/** gRPC OK. */
export const OK = 0;

/** The gRPC number of an error class. */
export function grpcCode(code: Code): number {
  return GRPC[code];
}

/**
 * Turns any throwable into a wire status. A `ShimError` (first in the cause chain) keeps its code; an
 * abort or timeout error becomes CANCELLED or DEADLINE_EXCEEDED (mirrors ttrpc `convertCode` for
 * context errors); anything else becomes UNKNOWN with its message.
 */
export function toStatus(err: unknown): { code: number; message: string } {
  const message = err instanceof Error ? err.message : String(err);
  return { code: GRPC[codeOf(err)], message };
}

/** Turns a non-OK wire status into a `ShimError`. Codes without an error class become `Unknown`. */
export function fromStatus(code: number, message: string): ShimError {
  return new ShimError(FROM_GRPC.get(code) ?? "Unknown", message);
}
