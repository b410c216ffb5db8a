/**
 * Request bytes and client tuples for the API bench's load generators.
 *
 * The stream client encodes ScheduleStreamRequest and reads ScheduleStreamResponse by hand (a few
 * length-delimited fields) so that the load generator spends as little CPU as possible on a 2-core box;
 * `checkHandEncoding()` proves the bytes equal protobuf-es's own `toBinary` before any run.
 * The h2load body is built with protobuf-es directly.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import {
  ScheduleRequestSchema,
  ScheduleResponseSchema,
  ScheduleStreamRequestSchema,
  ScheduleStreamResponseSchema,
} from '../src/gen/ipvs/v1/scheduler_pb.js';

/** The virtual service every bench request targets (memory engine, wlc, 10 destinations). */
export const VIRTUAL = '10.0.0.1:80';
export const SERVICE = { protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wlc' } as const;
export const DESTINATIONS = 10;

/** Client endpoints per address before the address moves on (ports 1024..65023). */
const PORTS = 64_000;

/**
 * The `n`-th distinct client endpoint of load-generator run `run` (0..63): `100.<64+run>.a.b:port`.
 * bench/wrk-schedule.lua builds the very same strings, so no two runs share a tuple.
 */
export function clientFor(run: number, n: number): string {
  const host = Math.floor(n / PORTS);
  return `100.${64 + (run & 63)}.${(Math.floor(host / 250) % 250) + 1}.${(host % 250) + 1}:${1024 + (n % PORTS)}`;
}

/** A gRPC length-prefixed message (uncompressed flag + 4-byte big-endian length + bytes). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** ScheduleRequest bytes, encoded by protobuf-es. */
export function scheduleRequestBytes(client: string, initialState?: string): Uint8Array {
  return toBinary(
    ScheduleRequestSchema,
    create(ScheduleRequestSchema, { protocol: 'tcp', client, virtual: VIRTUAL, initialState }),
  );
}

function putString(buf: Buffer, offset: number, key: number, text: string): number {
  buf[offset] = key;
  buf[offset + 1] = text.length;
  return offset + 2 + buf.write(text, offset + 2, 'latin1');
}

/** ScheduleStreamRequest { tag, request: { protocol: "tcp", client, virtual } }, by hand. */
export function encodeStreamRequest(tag: string, client: string): Buffer {
  const inner = 2 + 3 + 2 + client.length + 2 + VIRTUAL.length;
  if (tag.length > 127 || inner > 127) throw new Error('bench payload: field longer than one varint byte');
  const buf = Buffer.allocUnsafe(2 + tag.length + 2 + inner);
  let o = putString(buf, 0, 0x0a, tag);
  buf[o++] = 0x12;
  buf[o++] = inner;
  o = putString(buf, o, 0x0a, 'tcp');
  o = putString(buf, o, 0x12, client);
  putString(buf, o, 0x1a, VIRTUAL);
  return buf;
}

export interface StreamAnswer {
  tag: string;
  /** A `response` came back and no `error`. */
  ok: boolean;
}

/** Reads the top-level fields of a ScheduleStreamResponse (1 tag, 2 response, 3 error). */
export function parseStreamResponse(buf: Buffer): StreamAnswer {
  let o = 0;
  let tag = '';
  let response = false;
  let error = false;
  while (o < buf.length) {
    const key = buf[o++];
    if ((key & 7) !== 2) throw new Error(`bench payload: unexpected wire type in key ${key}`);
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const b = buf[o++];
      len |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    const field = key >> 3;
    if (field === 1) tag = buf.toString('latin1', o, o + len);
    else if (field === 2) response = true;
    else if (field === 3) error = true;
    o += len;
  }
  return { tag, ok: response && !error };
}

/** Throws unless the hand-made bytes are exactly protobuf-es's. */
export function checkHandEncoding(): void {
  const client = clientFor(5, 123_456_789);
  const mine = encodeStreamRequest('4242', client);
  const theirs = toBinary(
    ScheduleStreamRequestSchema,
    create(ScheduleStreamRequestSchema, {
      tag: '4242',
      request: { protocol: 'tcp', client, virtual: VIRTUAL },
    }),
  );
  if (!Buffer.from(theirs).equals(mine))
    throw new Error('bench payload: hand-encoded stream request differs');
  const ok = toBinary(
    ScheduleStreamResponseSchema,
    create(ScheduleStreamResponseSchema, {
      tag: '77',
      response: create(ScheduleResponseSchema, { service: 'tcp:10.0.0.1:80', destination: '10.1.0.1:80' }),
    }),
  );
  const failed = toBinary(
    ScheduleStreamResponseSchema,
    create(ScheduleStreamResponseSchema, { tag: '78', error: { code: 'NO_SERVICE', message: 'x' } }),
  );
  const a = parseStreamResponse(Buffer.from(ok));
  const b = parseStreamResponse(Buffer.from(failed));
  if (a.tag !== '77' || !a.ok || b.tag !== '78' || b.ok)
    throw new Error('bench payload: stream response parser disagrees with protobuf-es');
}
