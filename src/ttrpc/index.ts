/** Public surface of the ttrpc module: framing, services, server, client and status mapping. */
export { FrameDecoder, encodeFrame, writeHeader, HEADER_SIZE, MAX_MESSAGE, FrameType, Flags } from "./frame.js";
export type { Frame, OversizedFrame, DecodedFrame } from "./frame.js";
export { unary, ServiceRegistry } from "./service.js";
export type { CallContext, Method, MessageType } from "./service.js";
export { Server } from "./server.js";
export type { Authorize, ServerOptions, ConnectionSnapshot, ServerSnapshot } from "./server.js";
export type { CallSnapshot } from "./connection.js";
export { Client } from "./client.js";
export type { CallOptions } from "./client.js";
export { toStatus, fromStatus, grpcCode, OK } from "./status.js";
