/**
 * The conn-sync wire codec: engine records survive the hand-framed entries and snapshot messages
 * field for field, and every field of proto ipvs.v1.SyncEntry is carried (a field added to
 * sync.proto without the codec fails here).
 */
import { toBinary, create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { SyncEntry } from '../../src/engine/engine.js';
import { SyncEntrySchema, SyncMessageSchema } from '../../src/gen/ipvs/v1/sync_pb.js';
import {
  sentBy,
  decodeMessage,
  encodeEntriesMessage,
  encodeEntry,
  encodeSnapshotMessage,
  framedSize,
  fromProtoEntry,
  headerOverhead,
  toProtoEntry,
} from '../../src/sync/codec.js';

const FULL: SyncEntry = {
  protocol: 'udp',
  template: true,
  inactive: true,
  noOutput: true,
  state: 'ASSURED',
  clientAddress: '2001:db8::99',
  clientPort: 5060,
  virtualAddress: '2001:db8::10',
  virtualPort: 5060,
  destinationAddress: '2001:db8::21',
  destinationPort: 5061,
  fwmark: 7,
  timeout: 1800,
  forward: 'route',
  peName: 'sip',
  peData: 'call@x',
  expiresInMs: 12345,
};
const PLAIN: SyncEntry = {
  protocol: 'tcp',
  template: false,
  inactive: false,
  noOutput: false,
  state: 'ESTABLISHED',
  clientAddress: '192.168.1.1',
  clientPort: 40000,
  virtualAddress: '10.0.0.1',
  virtualPort: 80,
  destinationAddress: '10.1.0.1',
  destinationPort: 80,
  fwmark: 0,
  timeout: 900,
};
const header = { directorId: 'dir-1', syncid: 5, sequence: 42n, sentAtMs: 1_700_000_000_000n };

describe('sync codec', () => {
  it('carries every field of SyncEntry', () => {
    const proto = toProtoEntry(FULL);
    const set = SyncEntrySchema.fields.filter((f) => {
      const v = (proto as unknown as Record<string, unknown>)[f.localName];
      return v !== undefined && v !== '' && v !== 0 && v !== false;
    });
    expect(set.map((f) => f.localName).sort()).toEqual(SyncEntrySchema.fields.map((f) => f.localName).sort());
    expect(fromProtoEntry(proto)).toEqual(FULL);
    expect(fromProtoEntry(toProtoEntry(PLAIN))).toEqual(PLAIN);
  });

  it('an entries message decodes as the SyncMessage it frames, and its size is what the batcher counts', () => {
    const records = [FULL, PLAIN].map(encodeEntry);
    const bytes = encodeEntriesMessage(header, records);
    const m = decodeMessage(bytes);
    expect([m.directorId, m.syncid, m.sequence, m.sentAtMs]).toEqual(['dir-1', 5, 42n, 1_700_000_000_000n]);
    expect(m.body.case).toBe('entries');
    expect(m.body.case === 'entries' && m.body.value.entries.map(fromProtoEntry)).toEqual([FULL, PLAIN]);
    // The same bytes as protobuf-es writes the message.
    const same = toBinary(
      SyncMessageSchema,
      create(SyncMessageSchema, {
        ...header,
        body: { case: 'entries', value: { entries: [FULL, PLAIN].map(toProtoEntry) } },
      }),
    );
    expect(Buffer.from(bytes).equals(Buffer.from(same))).toBe(true);
    const body = records.reduce((n, r) => n + framedSize(r.length), 0);
    expect(bytes.length).toBeLessThanOrEqual(headerOverhead('dir-1', body) + body);
  });

  it('snapshot parts', () => {
    const m = decodeMessage(
      encodeSnapshotMessage(header, { snapshotId: 'dir-1/3', part: 2, last: true }, [encodeEntry(PLAIN)]),
    );
    expect(m.body.case).toBe('snapshot');
    if (m.body.case !== 'snapshot') return;
    expect([m.body.value.snapshotId, m.body.value.part, m.body.value.last]).toEqual(['dir-1/3', 2, true]);
    expect(m.body.value.entries.map(fromProtoEntry)).toEqual([PLAIN]);
    const first = decodeMessage(encodeSnapshotMessage(header, { snapshotId: 's', part: 0, last: false }, []));
    expect(
      first.body.case === 'snapshot' && [
        first.body.value.part,
        first.body.value.last,
        first.body.value.entries,
      ],
    ).toEqual([0, false, []]);
  });
});

describe('sentBy: a director recognises its own messages without decoding them', () => {
  const bytesOf = (directorId: string, body: Parameters<typeof create<typeof SyncMessageSchema>>[1]) =>
    toBinary(SyncMessageSchema, create(SyncMessageSchema, { directorId, syncid: 5, sequence: 7n, ...body }));
  const id = (s: string) => new TextEncoder().encode(s);

  it('matches the sender of entries, snapshots and resync requests, and nobody else', () => {
    const uuid = '1f9bdc4d-d4ab-43d0-97c6-90a993677157';
    const messages = [
      bytesOf(uuid, { body: { case: 'entries', value: { entries: [] } } }),
      bytesOf(uuid, { body: { case: 'resyncRequest', value: { director: 'x', reason: 'gap' } } }),
      bytesOf(uuid, {
        body: { case: 'snapshot', value: { snapshotId: 's', part: 0, last: true, entries: [] } },
      }),
    ];
    for (const m of messages) {
      expect(sentBy(m, id(uuid))).toBe(true);
      expect(sentBy(m, id(uuid.replace('1f9b', '1f9c')))).toBe(false);
      expect(sentBy(m, id(uuid.slice(0, 10)))).toBe(false);
      expect(sentBy(m, id(`${uuid}x`))).toBe(false);
    }
  });

  it('never matches a message without a director id or garbage', () => {
    expect(sentBy(bytesOf('', {}), id('a'))).toBe(false);
    expect(sentBy(new Uint8Array([0x0a]), id('a'))).toBe(false);
    expect(sentBy(new Uint8Array([]), id('a'))).toBe(false);
  });
});
