/**
 * Conn-sync wire messages (proto ipvs.v1.SyncMessage) to and from bytes, and the engine's SyncEntry
 * to and from its protobuf form. An entries message is framed by hand from entries encoded once:
 * the batcher needs each record's size when it is queued (the kernel's `sync_maxlen` rule), and
 * re-encoding the whole message at send time would do the work twice.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { SyncEntry } from '../engine/engine.js';
import {
  SyncEntrySchema,
  SyncMessageSchema,
  type SyncEntry as ProtoSyncEntry,
  type SyncMessage,
} from '../gen/ipvs/v1/sync_pb.js';

export type { SyncMessage };

/** Field numbers of sync.proto used by the hand-framed messages. */
const MESSAGE_ENTRIES_FIELD = 5;
const ENTRIES_ENTRY_FIELD = 1;
const MESSAGE_SNAPSHOT_FIELD = 7;
const SNAPSHOT_ID_FIELD = 1;
const SNAPSHOT_PART_FIELD = 2;
const SNAPSHOT_LAST_FIELD = 3;
const SNAPSHOT_ENTRY_FIELD = 4;

/** The engine's record as its protobuf message. */
export function toProtoEntry(e: SyncEntry): ProtoSyncEntry {
  const p = create(SyncEntrySchema, {
    protocol: e.protocol,
    template: e.template,
    inactive: e.inactive,
    noOutput: e.noOutput,
    state: e.state,
    clientAddress: e.clientAddress,
    clientPort: e.clientPort,
    virtualAddress: e.virtualAddress,
    virtualPort: e.virtualPort,
    destinationAddress: e.destinationAddress,
    destinationPort: e.destinationPort,
    fwmark: e.fwmark,
    timeout: e.timeout,
    forward: e.forward ?? '',
  });
  if (e.peName !== undefined) p.peName = e.peName;
  if (e.peData !== undefined) p.peData = e.peData;
  if (e.expiresInMs !== undefined)
    p.expiresInMs = Math.min(0xffffffff, Math.max(0, Math.round(e.expiresInMs)));
  return p;
}

/** A received record in the engine's form (optional fields only when present). */
export function fromProtoEntry(p: ProtoSyncEntry): SyncEntry {
  const e: SyncEntry = {
    protocol: p.protocol,
    template: p.template,
    inactive: p.inactive,
    noOutput: p.noOutput,
    state: p.state,
    clientAddress: p.clientAddress,
    clientPort: p.clientPort,
    virtualAddress: p.virtualAddress,
    virtualPort: p.virtualPort,
    destinationAddress: p.destinationAddress,
    destinationPort: p.destinationPort,
    fwmark: p.fwmark,
    timeout: p.timeout,
  };
  if (p.forward !== '') e.forward = p.forward;
  if (p.peName !== undefined) e.peName = p.peName;
  if (p.peData !== undefined) e.peData = p.peData;
  if (p.expiresInMs !== undefined) e.expiresInMs = p.expiresInMs;
  return e;
}

/** One record, encoded. */
export function encodeEntry(e: SyncEntry): Uint8Array {
  return toBinary(SyncEntrySchema, toProtoEntry(e));
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** Bytes a record of `length` takes inside `SyncEntries` (tag, length, body). */
export function framedSize(length: number): number {
  return 1 + varintSize(length) + length;
}

export interface Header {
  directorId: string;
  syncid: number;
  sequence: bigint;
  sentAtMs: bigint;
}

/**
 * The most bytes a header and the `entries` wrapper can take for `directorId`, whatever the
 * sequence and time, when the entries themselves take `bodyMax` bytes.
 */
export function headerOverhead(directorId: string, bodyMax: number): number {
  const header = toBinary(
    SyncMessageSchema,
    create(SyncMessageSchema, {
      directorId,
      syncid: 255,
      sequence: 0xffffffffffffffffn,
      sentAtMs: 0xffffffffffffffffn,
    }),
  ).length;
  return header + 1 + varintSize(bodyMax);
}

function withHeader(header: Header, body: Uint8Array): Uint8Array {
  const head = toBinary(SyncMessageSchema, create(SyncMessageSchema, header));
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/** A SyncMessage with an `entries` body made of already encoded records. */
export function encodeEntriesMessage(header: Header, records: readonly Uint8Array[]): Uint8Array {
  const w = new BinaryWriter();
  w.tag(MESSAGE_ENTRIES_FIELD, WireType.LengthDelimited).fork();
  for (const r of records) w.tag(ENTRIES_ENTRY_FIELD, WireType.LengthDelimited).bytes(r);
  w.join();
  return withHeader(header, w.finish());
}

export interface SnapshotPart {
  snapshotId: string;
  part: number;
  last: boolean;
}

/** A SyncMessage with one `snapshot` part made of already encoded records. */
export function encodeSnapshotMessage(
  header: Header,
  part: SnapshotPart,
  records: readonly Uint8Array[],
): Uint8Array {
  const w = new BinaryWriter();
  w.tag(MESSAGE_SNAPSHOT_FIELD, WireType.LengthDelimited).fork();
  w.tag(SNAPSHOT_ID_FIELD, WireType.LengthDelimited).string(part.snapshotId);
  if (part.part !== 0) w.tag(SNAPSHOT_PART_FIELD, WireType.Varint).uint32(part.part);
  if (part.last) w.tag(SNAPSHOT_LAST_FIELD, WireType.Varint).bool(true);
  for (const r of records) w.tag(SNAPSHOT_ENTRY_FIELD, WireType.LengthDelimited).bytes(r);
  w.join();
  return withHeader(header, w.finish());
}

export function encodeMessage(message: SyncMessage): Uint8Array {
  return toBinary(SyncMessageSchema, message);
}

/** Throws on bytes that are not a SyncMessage. */
export function decodeMessage(bytes: Uint8Array): SyncMessage {
  return fromBinary(SyncMessageSchema, bytes);
}

export { SyncMessageSchema };

/**
 * Whether an encoded SyncMessage was sent by `directorId`, read from its first field without
 * decoding the rest: every director hears its own messages back on the channel (a master listens
 * for resync requests), and decoding them only to drop them doubled the master's receive work.
 */
export function sentBy(bytes: Uint8Array, directorId: Uint8Array): boolean {
  // Field 1 (director_id), wire type 2: tag 0x0a, then a varint length (ids are short: one byte).
  if (bytes.length < 2 + directorId.length || bytes[0] !== 0x0a || bytes[1] !== directorId.length)
    return false;
  for (let i = 0; i < directorId.length; i++) if (bytes[2 + i] !== directorId[i]) return false;
  return true;
}
