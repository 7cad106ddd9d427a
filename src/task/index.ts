/** The task service: containers and processes driven through the OCI runtime CLI. */
export { TaskService, type TaskServiceDeps } from "./service.js";
export type { Publisher } from "./events.js";
export { parseOptions, type ConfigLoader, type RuntimeOptions, type TaskConfig } from "./options.js";
export type { ContainerSnapshot, ProcessSnapshot, TaskSnapshot } from "./snapshot.js";
