// The files CRI mounts into a pod's containers (<CRI root>/sandboxes/<id>/hostname, hosts, resolv.conf),
// written by the shim sandboxer as containerd's podsandbox controller writes them (1.7.24 and 2.1.9:
// setupSandboxFiles, parseDNSOptions), and the lookup of the CRI root through containerd's Introspection.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import { isCode } from "../../src/errdefs.js";
import { hostnameContent, podFilePaths, removePodFiles, resolvConfContent, writePodFiles } from "../../src/sandbox/podfiles.js";
import { tempDir } from "../helpers/shim.js";

const mode = (p: string): number => statSync(p).mode & 0o777;
const read = (p: string): string => readFileSync(p, "utf8");
const HOST_NETWORK = { linux: { securityContext: { namespaceOptions: { network: 2 } } } };

async function hostFiles(dir: string): Promise<{ hosts: string; resolvConf: string; hostname: () => string }> {
  const hosts = path.join(dir, "host-hosts");
  const resolvConf = path.join(dir, "host-resolv.conf");
  await writeFile(hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
  await writeFile(resolvConf, "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n");
  return { hosts, resolvConf, hostname: () => "node-7" };
}

void suite("resolvConfContent", () => {
  void test("writes search, one nameserver line per server, then options, as containerd's parseDNSOptions", () => {
    const text = resolvConfContent({ servers: ["127.0.0.53", "127.0.0.54"], searches: ["ns.svc.cluster.local", "cluster.local"], options: ["ndots:5", "edns0"] });
    assert.equal(text, "search ns.svc.cluster.local cluster.local\nnameserver 127.0.0.53\nnameserver 127.0.0.54\noptions ndots:5 edns0\n");
  });
  void test("leaves out empty parts, and gives an empty text for an empty dns_config", () => {
    assert.equal(resolvConfContent({ servers: ["127.0.0.53"] }), "nameserver 127.0.0.53\n");
    assert.equal(resolvConfContent({ options: ["ndots:2"], searches: null }), "options ndots:2\n");
    assert.equal(resolvConfContent({}), "");
  });
});

void suite("hostnameContent", () => {
  void test("is the pod's hostname, else the node's, for any network mode", () => {
    assert.equal(hostnameContent({ hostname: "web-0" }, "node-7"), "web-0\n");
    assert.equal(hostnameContent({ ...HOST_NETWORK, hostname: "" }, "node-7"), "node-7\n");
    assert.equal(hostnameContent({}, "node-7"), "node-7\n");
  });
});

void suite("writePodFiles", () => {
  void test("writes hostname, the host's hosts and resolv.conf from dns_config at <CRI root>/sandboxes/<id> (dir 0755, files 0644)", async (t) => {
    const dir = await tempDir(t, "podfiles-");
    const host = await hostFiles(dir);
    const p = podFilePaths(path.join(dir, "cri"), "abc123");
    assert.equal(p.dir, path.join(dir, "cri", "sandboxes", "abc123"));
    assert.deepEqual([p.hostname, p.hosts, p.resolvConf].map((f) => path.basename(f)), ["hostname", "hosts", "resolv.conf"]);
    const old = process.umask(0o077);
    try {
      await writePodFiles(p, { hostname: "web-0", dnsConfig: { servers: ["127.0.0.53"], searches: ["svc.local"], options: ["ndots:5"] } }, host);
    } finally {
      process.umask(old);
    }
    assert.equal(read(p.hostname), "web-0\n");
    assert.equal(read(p.hosts), read(host.hosts));
    assert.equal(read(p.resolvConf), "search svc.local\nnameserver 127.0.0.53\noptions ndots:5\n");
    for (const f of [p.hostname, p.hosts, p.resolvConf]) assert.equal(mode(f), 0o644, f);
  });

  void test("gives a host-network pod without hostname the node's hostname and the host's hosts and resolv.conf", async (t) => {
    const dir = await tempDir(t, "podfiles-");
    const host = await hostFiles(dir);
    const p = podFilePaths(dir, "hostnet");
    await writePodFiles(p, HOST_NETWORK, host);
    assert.equal(read(p.hostname), "node-7\n");
    assert.equal(read(p.hosts), read(host.hosts));
    assert.equal(read(p.resolvConf), read(host.resolvConf));
  });

  void test("writes an empty resolv.conf for an empty dns_config (set, so not the host's)", async (t) => {
    const dir = await tempDir(t, "podfiles-");
    const p = podFilePaths(dir, "emptydns");
    await writePodFiles(p, { hostname: "h", dnsConfig: {} }, await hostFiles(dir));
    assert.equal(read(p.resolvConf), "");
  });

  void test("uses the real host files by default", async (t) => {
    const dir = await tempDir(t, "podfiles-");
    const p = podFilePaths(dir, "real");
    await writePodFiles(p, {});
    assert.equal(read(p.hosts), read("/etc/hosts"));
    assert.equal(read(p.resolvConf), read("/etc/resolv.conf"));
    assert.equal(read(p.hostname), `${os.hostname()}\n`);
  });

  void test("fails with FailedPrecondition naming the file, and leaves no directory, when a host file is missing", async (t) => {
    const dir = await tempDir(t, "podfiles-");
    const host = { ...(await hostFiles(dir)), resolvConf: path.join(dir, "missing") };
    const p = podFilePaths(dir, "broken");
    await assert.rejects(writePodFiles(p, {}, host), (err: Error) => {
      assert.ok(isCode(err, "FailedPrecondition"), String(err));
      assert.equal(err.message, `Cannot copy the host's file "${host.resolvConf}": ENOENT`);
      return true;
    });
    assert.equal(existsSync(p.dir), false);
  });

  void test("fails with FailedPrecondition when the CRI root is not a directory", async (t) => {
    const dir = await tempDir(t, "podfiles-");
    await writeFile(path.join(dir, "cri"), "");
    const p = podFilePaths(path.join(dir, "cri"), "x");
    await assert.rejects(writePodFiles(p, {}, await hostFiles(dir)), (err: Error) => {
      assert.ok(isCode(err, "FailedPrecondition"), String(err));
      assert.equal(err.message, `Cannot create the pod directory "${p.dir}": ENOTDIR`);
      return true;
    });
  });
});

void suite("removePodFiles", () => {
  void test("removes the pod's directory with whatever else CRI put there, and is idempotent", async (t) => {
    const dir = await tempDir(t, "podfiles-");
    const p = podFilePaths(dir, "gone");
    await writePodFiles(p, {}, await hostFiles(dir));
    await mkdir(path.join(p.dir, "made-by-cri"));
    await removePodFiles(p);
    assert.equal(existsSync(p.dir), false);
    await removePodFiles(p);
  });
});
