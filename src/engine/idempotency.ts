/**
 * `requestId` idempotency: a retried Schedule with the same id gets the first answer and counts once.
 * Answers are kept for a bounded time and number (oldest dropped first).
 */
export const IDEMPOTENCY_TTL_MS = 5 * 60_000;
export const IDEMPOTENCY_MAX_ENTRIES = 100_000;

export class IdempotencyCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAt: number }>();

  constructor(
    private readonly ttlMs = IDEMPOTENCY_TTL_MS,
    private readonly maxEntries = IDEMPOTENCY_MAX_ENTRIES,
  ) {}

  get(id: string, now: number): T | undefined {
    const hit = this.entries.get(id);
    if (!hit || hit.expiresAt <= now) return undefined;
    return hit.value;
  }

  put(id: string, value: T, now: number): void {
    this.entries.delete(id);
    this.entries.set(id, { value, expiresAt: now + this.ttlMs });
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && entry.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}
