/**
 * The one error type of the service. Transports map `code` to an HTTP status and a gRPC code in one
 * place each; the message always names the field and, for bad input, the bad value.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'NO_SERVICE'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'NO_DESTINATION'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED';

export class IpvsError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'IpvsError';
  }
}

/** A rejected input: `<field>: <why> (got <value>)`. */
export function invalid(field: string, value: unknown, why: string): IpvsError {
  return new IpvsError('INVALID_ARGUMENT', `${field}: ${why} (got ${show(value)})`, field);
}

export function notFound(field: string, what: string): IpvsError {
  return new IpvsError('NOT_FOUND', `${field}: ${what}`, field);
}

export function alreadyExists(field: string, what: string): IpvsError {
  return new IpvsError('ALREADY_EXISTS', `${field}: ${what}`, field);
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value);
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 80 ? text.slice(0, 80) + '…' : text;
  } catch {
    return String(value);
  }
}
