/**
 * The one mapping from domain error codes to HTTP statuses and gRPC codes (API.md "Errors"), and the
 * JSON error shape. Anything that is not an IpvsError is an internal error and is logged, not shown.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { IpvsError, type ErrorCode } from '../domain/errors.js';

export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  NO_SERVICE: 404,
  ALREADY_EXISTS: 409,
  NO_DESTINATION: 503,
  UNAVAILABLE: 503,
};

export const GRPC_STATUS: Record<ErrorCode, GrpcStatus> = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  NO_SERVICE: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  NO_DESTINATION: GrpcStatus.UNAVAILABLE,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
};

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

/** The API's error shape; `field` names the request field at fault when there is one. */
export function errorBody(err: IpvsError): ErrorBody {
  return {
    error:
      err.field === undefined
        ? { code: err.code, message: err.message }
        : { code: err.code, message: err.message, field: err.field },
  };
}

export function isIpvsError(err: unknown): err is IpvsError {
  return err instanceof IpvsError;
}
