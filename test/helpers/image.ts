// Local OCI image tarballs for e2e tests, built from host binaries with the `tar` CLI: no registry, no network.
// Tarballs are cached under .deps/images/ (built once; the file name carries a layout version).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Repository root (test/helpers/image.ts and dist/test/helpers/image.js both resolve to it). */
export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

/** Reference of the busybox test image. */
export const BUSYBOX_REF = "docker.io/library/busybox:ts-test";
/** Reference of the pause image (catatonit -P) for CRI tests. */
export const PAUSE_REF = "docker.io/library/ts-pause:ts-test";

/** Busybox applets linked in the image's /bin. */
export const APPLETS = ["sh", "echo", "sleep", "cat", "true", "false", "ls", "ps", "id", "hostname", "env",
  "kill", "head", "dd", "wc", "grep", "readlink", "yes", "seq", "uname", "mkdir", "rm", "touch", "test", "["] as const;

const LAYOUT_VERSION = "v1";
const PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP = "root:x:0:\nnogroup:x:65534:\n";

type Entry = { path: string; copyFrom: string } | { path: string; symlinkTo: string } |
  { path: string; content: string } | { path: string; dir: true; mode?: number };

interface ImageSpec { ref: string; entries: Entry[]; config: Record<string, unknown> }

function findRepoRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${start}`);
    dir = up;
  }
  return dir;
}

function sha256(b: Buffer | string): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Path of the cached busybox image tarball (OCI layout), building it on first use. */
export function busyboxImageTar(): Promise<string> {
  const entries: Entry[] = [
    { path: "bin/busybox", copyFrom: "/bin/busybox" },
    ...APPLETS.map((a) => ({ path: `bin/${a}`, symlinkTo: "busybox" })),
    { path: "etc/passwd", content: PASSWD },
    { path: "etc/group", content: GROUP },
    { path: "tmp", dir: true, mode: 0o1777 },
    { path: "root", dir: true, mode: 0o700 },
  ];
  const config = { Cmd: ["sh"], Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] };
  return cachedImage("busybox", { ref: BUSYBOX_REF, entries, config });
}

/** Path of the cached pause image tarball: /catatonit (static) as `catatonit -P`. */
export function pauseImageTar(): Promise<string> {
  const entries: Entry[] = [{ path: "catatonit", copyFrom: "/usr/bin/catatonit" }];
  const config = { Entrypoint: ["/catatonit", "-P"], Env: ["PATH=/"], User: "65535:65535" };
  return cachedImage("pause", { ref: PAUSE_REF, entries, config });
}

async function cachedImage(name: string, spec: ImageSpec): Promise<string> {
  const dir = path.join(REPO_ROOT, ".deps", "images");
  const out = path.join(dir, `${name}-${LAYOUT_VERSION}.oci.tar`);
  if (existsSync(out)) return out;
  for (const e of spec.entries) {
    if ("copyFrom" in e && !existsSync(e.copyFrom)) {
      throw new Error(`image ${name}: ${e.copyFrom} is missing (run scripts/install-deps.sh)`);
    }
  }
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(path.join(tmpdir(), `img-${name}-`));
  try {
    const tmpOut = path.join(dir, `.${name}-${process.pid}.tmp`);
    await buildImage(spec, work, tmpOut);
    await rename(tmpOut, out); // atomic: concurrent builders produce identical bytes
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}

async function writeTree(root: string, entries: Entry[]): Promise<string[]> {
  const tops = new Set<string>();
  for (const e of entries) {
    const p = path.join(root, e.path);
    tops.add(e.path.split("/")[0]!);
    await mkdir(path.dirname(p), { recursive: true });
    if ("copyFrom" in e) {
      await copyFile(e.copyFrom, p);
      await chmod(p, 0o755);
    } else if ("symlinkTo" in e) {
      await symlink(e.symlinkTo, p);
    } else if ("content" in e) {
      await writeFile(p, e.content, { mode: 0o644 });
    } else {
      await mkdir(p, { recursive: true });
      await chmod(p, e.mode ?? 0o755);
    }
  }
  return [...tops].sort();
}

const TAR_FLAGS = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "--format=gnu"];

async function buildImage(spec: ImageSpec, work: string, outTar: string): Promise<void> {
  const tree = path.join(work, "tree");
  const layout = path.join(work, "layout");
  const blobs = path.join(layout, "blobs", "sha256");
  await mkdir(tree, { recursive: true });
  await mkdir(blobs, { recursive: true });
  const tops = await writeTree(tree, spec.entries);
  const layerPath = path.join(work, "layer.tar");
  await run("tar", [...TAR_FLAGS, "-C", tree, "-cf", layerPath, ...tops]);
  const layer = await readFile(layerPath);
  const layerDigest = sha256(layer);
  await writeFile(path.join(blobs, layerDigest), layer);

  const put = async (obj: unknown): Promise<{ digest: string; size: number }> => {
    const bytes = Buffer.from(JSON.stringify(obj));
    const hex = sha256(bytes);
    await writeFile(path.join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const config = await put({
    created: "1970-01-01T00:00:00Z", architecture: "amd64", os: "linux",
    config: spec.config,
    rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created: "1970-01-01T00:00:00Z", created_by: "test/helpers/image.ts" }],
  });
  const manifest = await put({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: `sha256:${layerDigest}`, size: layer.length }],
  });
  const tag = spec.ref.slice(spec.ref.lastIndexOf(":") + 1);
  const index = {
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest,
      platform: { architecture: "amd64", os: "linux" },
      annotations: { "io.containerd.image.name": spec.ref, "org.opencontainers.image.ref.name": tag },
    }],
  };
  await writeFile(path.join(layout, "index.json"), JSON.stringify(index));
  await writeFile(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await run("tar", [...TAR_FLAGS, "-C", layout, "-cf", outTar, "oci-layout", "index.json", "blobs"]);
}
