/** The sandbox service: containerd.runtime.sandbox.v1.Sandbox with a real pause process run by runc. */
export { SandboxService, SANDBOX_SERVICE, type SandboxServiceDeps, type SandboxServiceSnapshot, type SandboxSnapshot } from "./service.js";
export { buildSandboxSpec, capsFromMask, podNamespaces, type SandboxSpecInput, type PodNamespaces } from "./spec.js";
export { decodePodSandboxConfig, type PodSandboxConfig } from "./config.js";
export { platform } from "./platform.js";
