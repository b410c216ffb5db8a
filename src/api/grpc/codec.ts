/**
 * gRPC service definitions made from the protobuf-es descriptors of the generated code, so grpc-js
 * serves the very messages the .proto files define. Messages cross to the handlers in their proto3
 * JSON form — the same shape HTTP clients send — and answers go back through `fromJson`, which also
 * proves the handlers' answers fit the schema.
 */
import {
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type DescMethod,
  type DescService,
  type JsonValue,
} from '@bufbuild/protobuf';
import type { ServiceDefinition } from '@grpc/grpc-js';

export function serviceDefinition(desc: DescService): ServiceDefinition {
  const def: Record<string, unknown> = {};
  for (const m of desc.methods) {
    def[m.name] = {
      path: `/${desc.typeName}/${m.name}`,
      requestStream: m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming',
      responseStream: m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming',
      requestSerialize: (msg: never) => Buffer.from(toBinary(m.input, msg)),
      requestDeserialize: (buf: Buffer) => fromBinary(m.input, buf),
      responseSerialize: (msg: never) => Buffer.from(toBinary(m.output, msg)),
      responseDeserialize: (buf: Buffer) => fromBinary(m.output, buf),
    };
  }
  return def as ServiceDefinition;
}

/** A decoded request as the proto3 JSON object the handlers take. */
export function requestJson(method: DescMethod, message: unknown): Record<string, unknown> {
  return toJson(method.input, message as never) as Record<string, unknown>;
}

/** A handler's JSON answer as the method's response message. */
export function responseMessage(schema: DescMessage, json: unknown): unknown {
  return fromJson(schema, json as JsonValue);
}
