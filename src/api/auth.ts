/**
 * The admin token: when set, every mutating call must carry it (`Authorization: Bearer <token>`,
 * or gRPC metadata `authorization`). Compared in constant time; reads stay open.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { IpvsError } from '../domain/errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

export class AdminToken {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token === undefined ? undefined : digest(token);
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  /** Throws UNAUTHENTICATED without a bearer token and PERMISSION_DENIED for a wrong one. */
  check(authorization: string | string[] | undefined): void {
    if (!this.expected) return;
    const header = Array.isArray(authorization) ? authorization[0] : authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      throw new IpvsError(
        'UNAUTHENTICATED',
        'authorization: a bearer token is required for changes',
        'authorization',
      );
    }
    if (!timingSafeEqual(digest(match[1]), this.expected)) {
      throw new IpvsError('PERMISSION_DENIED', 'authorization: the token is not valid', 'authorization');
    }
  }
}
