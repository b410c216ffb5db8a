/**
 * ipvsadm's failures, with its exact stderr text and exit status (§8.1):
 * - `fail(2, …)` in `process_options`/`parse_options`: option errors, exit status 2;
 * - popt errors and `tryhelp_exit`: exit status 255 (`exit(-1)` / `return -1` from `main`);
 * - kernel errors printed with `ipvs_strerror`: `main` returns -1, exit status 255.
 */
export const EXIT_OPTION_ERROR = 2;
export const EXIT_FAILURE = 255;

export class IpvsadmError extends Error {
  constructor(
    /** Exactly what ipvsadm prints on stderr (without the final newline). */
    message: string,
    readonly exitStatus: number = EXIT_OPTION_ERROR,
    /** For engine errors: the engine's own, more precise message. */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'IpvsadmError';
  }
}

/** A failed line of `ipvsadm -R` input: which line (1-based) and why. */
export class RestoreError extends IpvsadmError {
  constructor(
    /** 1-based line number in the restored text. */
    readonly line: number,
    /** ipvsadm's message for the failure (what ipvsadm prints on stderr). */
    readonly reason: string,
    exitStatus: number,
    /** Commands applied before this line (they stay applied). */
    readonly applied: number,
    detail?: string,
  ) {
    super(`line ${line}: ${reason}`, exitStatus, detail);
    this.name = 'RestoreError';
  }
}

/** ipvsadm's `fail(2, …)`. */
export function optionError(message: string): IpvsadmError {
  return new IpvsadmError(message, EXIT_OPTION_ERROR);
}
