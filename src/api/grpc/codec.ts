/**
 * gRPC service definitions made from the protobuf-es descriptors of the generated code, so grpc-js
 * serves the very messages the .proto files define. Messages cross to the handlers in their proto3
 * JSON form — the same shape HTTP clients send — and answers go back as messages.
 *
 * The hot paths (Schedule, ScheduleStream) avoid protobuf-es's general JSON machinery: for messages
 * made only of scalars, strings, lists and nested messages (all of ours) the JSON form is built by
 * walking the descriptor, exactly as `toJson` would write it, and answers whose JSON form is also
 * their message form (no 64-bit fields, no renamed fields) are built with `create`. Anything else goes through `toJson` / `fromJson`.
 */
import {
  create,
  fromBinary,
  fromJson,
  ScalarType,
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

const INT64 = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);
/** `FeatureSet.FieldPresence.IMPLICIT`: proto3 fields without `optional`, omitted at their default. */
const IMPLICIT = 2;

interface Shape {
  /** Only scalars (no bytes), strings, lists and messages: the plain walk reproduces `toJson`. */
  plain: boolean;
  /**
   * The JSON form can be handed to `create`: no 64-bit integers (JSON strings, bigint in messages)
   * and every JSON name equal to the field's local name (Sysctl keeps the kernel's snake_case names).
   */
  creatable: boolean;
}

const shapes = new Map<string, Shape>();

function shapeOf(desc: DescMessage, seen = new Set<string>()): Shape {
  const known = shapes.get(desc.typeName);
  if (known) return known;
  const shape: Shape = { plain: true, creatable: true };
  if (seen.has(desc.typeName)) return shape;
  seen.add(desc.typeName);
  for (const f of desc.fields) {
    if (f.fieldKind === 'message' || (f.fieldKind === 'list' && f.listKind === 'message')) {
      const inner = shapeOf(f.message, seen);
      shape.plain &&= inner.plain;
      shape.creatable &&= inner.creatable;
    } else if (f.fieldKind === 'scalar' || (f.fieldKind === 'list' && f.listKind === 'scalar')) {
      if (f.scalar === ScalarType.BYTES) shape.plain = false;
      if (INT64.has(f.scalar)) shape.creatable = false;
    } else {
      shape.plain = false;
    }
    if (f.jsonName !== f.localName) shape.creatable = false;
  }
  shapes.set(desc.typeName, shape);
  return shape;
}

const isDefault = (v: unknown) => v === 0 || v === '' || v === false || v === 0n;

/** The proto3 JSON object of a message whose shape is plain (as `toJson` writes it). */
function plainJson(desc: DescMessage, message: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of desc.fields) {
    const v = message[f.localName];
    if (f.fieldKind === 'scalar') {
      if (v === undefined || (f.presence === IMPLICIT && isDefault(v))) continue;
      out[f.jsonName] = INT64.has(f.scalar) ? String(v) : v;
    } else if (f.fieldKind === 'message') {
      if (v !== undefined) out[f.jsonName] = plainJson(f.message, v as Record<string, unknown>);
    } else if (f.fieldKind === 'list') {
      const list = v as unknown[];
      if (list.length === 0) continue;
      if (f.listKind === 'message')
        out[f.jsonName] = list.map((x) => plainJson(f.message, x as Record<string, unknown>));
      else out[f.jsonName] = f.scalar !== undefined && INT64.has(f.scalar) ? list.map(String) : [...list];
    }
  }
  return out;
}

/** A decoded request as the proto3 JSON object the handlers take. */
export function requestJson(method: DescMethod, message: unknown): Record<string, unknown> {
  if (shapeOf(method.input).plain) return plainJson(method.input, message as Record<string, unknown>);
  return toJson(method.input, message as never) as Record<string, unknown>;
}

/** A handler's JSON answer as the method's response message. */
export function responseMessage(schema: DescMessage, json: unknown): unknown {
  if (shapeOf(schema).creatable) return create(schema, json as never);
  return fromJson(schema, json as JsonValue);
}
