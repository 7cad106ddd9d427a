// The sandbox spec as data: what each PodSandboxConfig setting turns into (no processes).
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { runtime } from "../../src/gen/crisandbox.js";
import { buildSandboxSpec, capsFromMask, decodePodSandboxConfig, platform, type PodSandboxConfig } from "../../src/sandbox/index.js";

const { POD, NODE, CONTAINER } = runtime.v1.NamespaceMode;

interface Spec {
  process: { args: string[]; user: { uid: number; gid: number; additionalGids?: number[] }; noNewPrivileges: boolean; capabilities: { bounding: string[] } };
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: { destination: string }[];
  linux: {
    cgroupsPath: string;
    namespaces: { type: string; path?: string }[];
    sysctl?: Record<string, string>;
    maskedPaths?: string[];
    resources: { devices: { allow: boolean }[] };
  };
}

function spec(config: PodSandboxConfig, netnsPath = ""): Spec {
  return buildSandboxSpec({ id: "sb1", config, netnsPath, defaultCgroupParent: "/k8s.io" }) as unknown as Spec;
}
const nsTypes = (s: Spec): string[] => s.linux.namespaces.map((n) => (n.path ? `${n.type}=${n.path}` : n.type)).sort();
const withNs = (o: runtime.v1.NamespaceOption.$Properties, hostname = "h"): PodSandboxConfig => ({
  hostname,
  linux: { securityContext: { namespaceOptions: o } },
});

void suite("buildSandboxSpec", () => {
  void test("runs catatonit -P from the bundle's rootfs with the pod's hostname in private namespaces by default", () => {
    const s = spec({ hostname: "web-0" });
    assert.deepEqual(s.process.args, ["/catatonit", "-P"]);
    assert.deepEqual(s.root, { path: "rootfs", readonly: false });
    assert.equal(s.hostname, "web-0");
    assert.deepEqual(nsTypes(s), ["ipc", "mount", "network", "pid", "uts"]);
    assert.equal(s.linux.cgroupsPath, "/k8s.io/sb1");
    assert.equal(s.process.noNewPrivileges, true);
    assert.ok(s.linux.maskedPaths?.includes("/proc/kcore"));
  });

  void test("joins netns_path instead of creating a network namespace", () => {
    assert.deepEqual(nsTypes(spec({}, "/var/run/netns/cni-1")), ["ipc", "mount", "network=/var/run/netns/cni-1", "pid", "uts"]);
  });

  void test("shares the host's network and UTS (and sets no hostname) for a host-network pod", () => {
    const s = spec(withNs({ network: NODE, pid: POD, ipc: POD }));
    assert.deepEqual(nsTypes(s), ["ipc", "mount", "pid"]);
    assert.equal(s.hostname, undefined);
  });

  void test("shares the host's IPC and PID namespaces when asked, and keeps a private PID ns for CONTAINER", () => {
    assert.deepEqual(nsTypes(spec(withNs({ ipc: NODE, pid: NODE }))), ["mount", "network", "uts"]);
    assert.ok(!spec(withNs({ ipc: NODE })).mounts.some((m) => m.destination === "/dev/mqueue"));
    assert.deepEqual(nsTypes(spec(withNs({ pid: CONTAINER }))), ["ipc", "mount", "network", "pid", "uts"]);
  });

  void test("applies the security context: user, groups, read-only root, privileged", () => {
    const s = spec({ linux: { securityContext: { runAsUser: { value: 65535 }, runAsGroup: { value: 65534 }, supplementalGroups: [5], readonlyRootfs: true } } });
    assert.deepEqual(s.process.user, { uid: 65535, gid: 65534, additionalGids: [5] });
    assert.equal(s.root.readonly, true);
    const p = spec({ linux: { securityContext: { privileged: true } } });
    assert.equal(p.process.capabilities.bounding.length, 41, "every capability when the shim has them all");
    assert.ok(p.process.capabilities.bounding.includes("CAP_SYS_ADMIN"));
    assert.equal(p.process.noNewPrivileges, false);
    assert.equal(p.linux.maskedPaths, undefined);
    assert.deepEqual(p.linux.resources.devices, [{ allow: true, access: "rwm" }]);
  });

  void test("gives a privileged sandbox only the capabilities the shim has", () => {
    const caps = capsFromMask("a80425fb"); // docker's default set as a CapEff mask
    assert.ok(caps.includes("CAP_CHOWN") && caps.includes("CAP_NET_BIND_SERVICE") && !caps.includes("CAP_SYS_ADMIN"));
    const s = buildSandboxSpec({ id: "x", config: { linux: { securityContext: { privileged: true } } }, netnsPath: "", defaultCgroupParent: "/k", currentCaps: caps }) as unknown as Spec;
    assert.deepEqual(s.process.capabilities.bounding, caps);
    assert.equal(capsFromMask("1ffffffffff").length, 41);
  });

  void test("puts the sandbox under cgroup_parent and passes sysctls", () => {
    const s = spec({ linux: { cgroupParent: "/kubepods/pod-1/", sysctls: { "net.ipv4.ip_forward": "1" } } });
    assert.equal(s.linux.cgroupsPath, "/kubepods/pod-1/sb1");
    assert.deepEqual(s.linux.sysctl, { "net.ipv4.ip_forward": "1" });
  });

  void test("refuses systemd slices (InvalidArgument) and pod user namespaces (Unimplemented)", () => {
    assert.throws(() => spec({ linux: { cgroupParent: "kubepods.slice" } }), { code: "InvalidArgument" });
    assert.throws(() => spec(withNs({ usernsOptions: { mode: POD, uids: [{ hostId: 100000, containerId: 0, length: 65536 }] } })), { code: "Unimplemented" });
  });
});

void suite("decodePodSandboxConfig", () => {
  void test("decodes any type URL ending in PodSandboxConfig, and an absent Any as an empty config", () => {
    const value = runtime.v1.PodSandboxConfig.encode({ hostname: "x", metadata: { name: "n" } }).finish();
    for (const typeUrl of ["type.googleapis.com/runtime.v1.PodSandboxConfig", "runtime.v1.PodSandboxConfig"]) {
      assert.equal(decodePodSandboxConfig({ typeUrl, value }).hostname, "x");
    }
    assert.deepEqual(decodePodSandboxConfig(undefined), {});
    assert.throws(() => decodePodSandboxConfig({ typeUrl: "containerd.runc.v1.Options", value }), { code: "InvalidArgument" });
  });
});

void suite("platform", () => {
  void test("maps Node's arch names to OCI ones", () => {
    assert.deepEqual(platform("x64", "linux"), { os: "linux", architecture: "amd64" });
    assert.deepEqual(platform("arm64", "linux"), { os: "linux", architecture: "arm64" });
    assert.deepEqual(platform("arm", "linux"), { os: "linux", architecture: "arm", variant: "v7" });
  });
});
