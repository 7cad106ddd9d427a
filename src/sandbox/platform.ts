/** The platform the shim runs sandboxes for (PlatformResponse), from Node's `process.arch`. */

/** Node's `process.arch` names mapped to OCI/Go GOARCH names. */
const ARCH: Record<string, string> = {
  x64: "amd64",
  ia32: "386",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le", // Node on Linux only supports little-endian ppc64
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

/** An OCI platform: `{ os: "linux", architecture: "amd64" }` on x86-64 (`variant` for 32-bit arm). */
export function platform(arch: string = process.arch, os: string = process.platform): { os: string; architecture: string; variant?: string } {
  const architecture = ARCH[arch] ?? arch;
  // Node's 32-bit arm builds need ARMv7.
  return { os, architecture, ...(arch === "arm" ? { variant: "v7" } : {}) };
}
