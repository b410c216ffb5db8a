/**
 * The master's send buffer, as the kernel fills it (§7.2 "Buffering/transmission"): records are
 * appended until the next one would not fit in `maxlen` bytes, and a buffer goes out when full or
 * `delayMs` after its first record (`IPVS_SYNC_SEND_DELAY`, 20 ms). A record larger than `maxlen`
 * on its own is sent alone.
 */
import type { SyncEntry } from '../engine/engine.js';
import { encodeEntry, framedSize } from './codec.js';

export interface BatcherOptions {
  /** Largest encoded message, bytes. */
  maxlen: number;
  /** Bytes the message header and the `entries` wrapper take (see `headerOverhead`). */
  overhead: number;
  delayMs: number;
  /** Publishes one batch (the encoded records, in order). */
  send: (records: Uint8Array[]) => void;
}

export class Batcher {
  private records: Uint8Array[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BatcherOptions) {}

  add(entries: readonly SyncEntry[]): void {
    const { maxlen, overhead } = this.options;
    for (const e of entries) {
      const record = encodeEntry(e);
      const size = framedSize(record.length);
      if (this.records.length > 0 && overhead + this.bytes + size > maxlen) this.flush();
      this.records.push(record);
      this.bytes += size;
      if (overhead + this.bytes >= maxlen) this.flush();
    }
    if (this.records.length > 0 && this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.options.delayMs);
    }
  }

  /** Sends what is buffered now. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.records.length === 0) return;
    const records = this.records;
    this.records = [];
    this.bytes = 0;
    this.options.send(records);
  }

  get pending(): number {
    return this.records.length;
  }
}
