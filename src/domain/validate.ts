/** Small strict validators shared by every request parser; each rejection names the field. */
import { invalid } from './errors.js';

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** A plain JSON object with only `allowed` keys. */
export function objectWith(
  value: unknown,
  field: string,
  allowed: readonly string[],
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(field, value, 'must be an object');
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key) || !allowed.includes(key)) {
      throw invalid(`${field}.${key}`, key, `is not a known field (known: ${allowed.join(', ')})`);
    }
  }
  return value as Record<string, unknown>;
}

export function intIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, value, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function optionalInt(
  value: unknown,
  field: string,
  min: number,
  max: number,
  fallback: number,
): number {
  return value === undefined || value === null ? fallback : intIn(value, field, min, max);
}

export function bool(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw invalid(field, value, 'must be true or false');
  return value;
}

export function text(value: unknown, field: string, maxBytes: number): string {
  if (typeof value !== 'string' || value.length === 0)
    throw invalid(field, value, 'must be a non-empty string');
  if (Buffer.byteLength(value) > maxBytes) throw invalid(field, value, `must be at most ${maxBytes} bytes`);
  return value;
}

/** `text` without control characters (a SIP Call-ID, an idempotency key: printable by nature). */
export function printableText(value: unknown, field: string, maxBytes: number): string {
  const s = text(value, field, maxBytes);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) throw invalid(field, value, 'must not contain control characters');
  return s;
}

/** A count (uint64 in the proto): a non-negative safe integer, or its decimal string (proto3 JSON). */
export function optionalCount(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === 'string' && /^[0-9]{1,16}$/.test(value) ? Number(value) : value;
  return intIn(n, field, 0, Number.MAX_SAFE_INTEGER);
}
