/**
 * Protobuf wire bits for the few messages the short-lived `start` and `delete` encode by hand: loading the
 * generated code costs them ~13 ms and ~5 MB (bench/RESULTS.md).
 */

/** Appends `n` (a non-negative safe integer) as a protobuf varint. */
export function pushVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}
