// A stand-in for containerd's gRPC socket that serves only Introspection.Plugins, with grpc-js and a
// protobufjs encoder built from the .proto text of containerd's api/services/introspection/v1 (fields
// type 1, id 2, requires 3, platforms 4, exports 5, capabilities 6, init_err 7), independent of the
// shim's hand-written codec.
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";

const PROTO = `syntax = "proto3";
package containerd.services.introspection.v1;
message Platform { string os = 1; string architecture = 2; string variant = 3; }
message Status { int32 code = 1; string message = 2; }
message Plugin {
  string type = 1; string id = 2; repeated string requires = 3; repeated Platform platforms = 4;
  map<string, string> exports = 5; repeated string capabilities = 6; Status init_err = 7;
}
message PluginsRequest { repeated string filters = 1; }
message PluginsResponse { repeated Plugin plugins = 1; }
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
export const PluginsRequest = root.lookupType("containerd.services.introspection.v1.PluginsRequest");
export const PluginsResponse = root.lookupType("containerd.services.introspection.v1.PluginsResponse");

/** A plugin entry as containerd lists it (only what tests set). */
export interface FakePlugin {
  type: string;
  id: string;
  exports?: Record<string, string>;
  requires?: string[];
  platforms?: { os: string; architecture: string }[];
  capabilities?: string[];
}

/** What the fake answers: plugins (filtered by the request's filters), a gRPC error, or never. */
export type FakeAnswer = { plugins: FakePlugin[] } | { error: grpc.status; message: string } | "hang";

/** The content plugin of a containerd whose root is `root`, as 1.7.24 and 2.1.9 list it. */
export function contentPlugin(root: string): FakePlugin {
  return { type: "io.containerd.content.v1", id: "content", exports: { root: `${root}/io.containerd.content.v1.content` } };
}

/** Matches containerd's filter syntax for the one form the shim sends: `type==T,id==I`. */
function matches(p: FakePlugin, filters: string[]): boolean {
  if (filters.length === 0) return true;
  return filters.some((f) => f.split(",").every((term) => {
    const [k, v] = term.split("==");
    return (k === "type" && p.type === v) || (k === "id" && p.id === v);
  }));
}

export interface FakeIntrospection {
  /** Filters of every request received. */
  requests: string[][];
  answer: FakeAnswer;
  close(): Promise<void>;
}

/** Serves Introspection.Plugins on the unix socket `socket` until close(). */
export async function fakeIntrospection(socket: string, answer: FakeAnswer): Promise<FakeIntrospection> {
  const server = new grpc.Server();
  const hanging: grpc.sendUnaryData<Uint8Array>[] = [];
  const fake: FakeIntrospection = {
    requests: [],
    answer,
    close: async () => {
      for (const cb of hanging.splice(0)) cb({ code: grpc.status.UNAVAILABLE, details: "closing" });
      server.forceShutdown();
    },
  };
  const definition: grpc.ServiceDefinition = {
    Plugins: {
      path: "/containerd.services.introspection.v1.Introspection/Plugins",
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Uint8Array) => Buffer.from(b),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Uint8Array) => Buffer.from(b),
      responseDeserialize: (b: Buffer) => b,
    },
  };
  server.addService(definition, {
    Plugins: (call: grpc.ServerUnaryCall<Buffer, Uint8Array>, cb: grpc.sendUnaryData<Uint8Array>) => {
      const req = PluginsRequest.toObject(PluginsRequest.decode(call.request)) as { filters?: string[] };
      const filters = req.filters ?? [];
      fake.requests.push(filters);
      const a = fake.answer;
      if (a === "hang") return void hanging.push(cb);
      if ("error" in a) return cb({ code: a.error, details: a.message });
      const plugins = a.plugins.filter((p) => matches(p, filters));
      cb(null, PluginsResponse.encode(PluginsResponse.fromObject({ plugins })).finish());
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return fake;
}
