/**
 * `PATCH /v1/sysctl`: the behaviour switches of /proc/sys/net/ipv4/vs/ under their kernel names,
 * with the kernel's defaults (ipvs-semantics.md §9.1) and ranges; nothing half-applied.
 */
import { describe, expect, it } from 'vitest';
import { IpvsError } from '../../src/domain/errors.js';
import { DEFAULT_SYSCTL, patchSysctl, type SysctlValues } from '../../src/director/sysctl.js';

function expectInvalid(fn: () => unknown, field: string, shown?: string): IpvsError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a rejection').toBeInstanceOf(IpvsError);
  const err = caught as IpvsError;
  expect(err.code).toBe('INVALID_ARGUMENT');
  expect(err.field).toBe(field);
  expect(err.message.startsWith(`${field}: `), err.message).toBe(true);
  if (shown !== undefined) expect(err.message).toContain(`(got ${shown}`);
  return err;
}

const fresh = (): SysctlValues => ({ ...DEFAULT_SYSCTL, sync_threshold: [...DEFAULT_SYSCTL.sync_threshold] });

describe('defaults (§9.1)', () => {
  it('match the kernel', () => {
    expect(DEFAULT_SYSCTL).toEqual({
      expire_quiescent_template: 0,
      expire_nodest_conn: 0,
      conn_reuse_mode: 1,
      secure_tcp: 0,
      sloppy_tcp: 0,
      sloppy_sctp: 0,
      lblc_expiration: 86400,
      lblcr_expiration: 86400,
      sync_threshold: [3, 50],
      sync_refresh_period: 0,
      sync_persist_mode: 0,
      sync_retries: 0,
      sync_version: 1,
    });
  });
});

describe('patchSysctl', () => {
  it('applies a patch and leaves the rest alone', () => {
    const cur = fresh();
    const next = patchSysctl(cur, { expire_nodest_conn: 1, lblc_expiration: 60, sync_threshold: [0, 0] });
    expect(next).toEqual({ ...cur, expire_nodest_conn: 1, lblc_expiration: 60, sync_threshold: [0, 0] });
  });

  it('an empty patch changes nothing', () => {
    expect(patchSysctl(fresh(), {})).toEqual(DEFAULT_SYSCTL);
  });

  it('never modifies the current values (a new object, a new sync_threshold array)', () => {
    const cur = fresh();
    const next = patchSysctl(cur, { secure_tcp: 3 });
    expect(cur).toEqual(DEFAULT_SYSCTL);
    expect(next).not.toBe(cur);
    expect(next.sync_threshold).not.toBe(cur.sync_threshold);
    next.sync_threshold[0] = 9;
    expect(cur.sync_threshold).toEqual([3, 50]);
  });

  it('nothing is half-applied when one value is bad', () => {
    const cur = fresh();
    expectInvalid(
      () => patchSysctl(cur, { sloppy_tcp: 1, expire_nodest_conn: 1, secure_tcp: 4 }),
      'sysctl.secure_tcp',
      '4',
    );
    expect(cur).toEqual(DEFAULT_SYSCTL);
    expectInvalid(
      () => patchSysctl(cur, { sloppy_tcp: 1, sync_threshold: [50, 50] }),
      'sysctl.sync_threshold',
    );
    expect(cur).toEqual(DEFAULT_SYSCTL);
  });

  // [name, min, max]: from §9.1 where it gives a range (secure_tcp 0..3, sync_version 0/1,
  // sync_retries 0..3, conn_reuse_mode a 2-bit bitmap); booleans 0/1; expirations in seconds, at
  // least 1 and at most INT_MAX jiffies at HZ=1000.
  const RANGES: [keyof SysctlValues, number, number][] = [
    ['expire_quiescent_template', 0, 1],
    ['expire_nodest_conn', 0, 1],
    ['conn_reuse_mode', 0, 3],
    ['secure_tcp', 0, 3],
    ['sloppy_tcp', 0, 1],
    ['sloppy_sctp', 0, 1],
    ['lblc_expiration', 1, 2147483],
    ['lblcr_expiration', 1, 2147483],
    ['sync_refresh_period', 0, 2147483],
    ['sync_persist_mode', 0, 1],
    ['sync_retries', 0, 3],
    ['sync_version', 0, 1],
  ];

  it.each(RANGES)('%s accepts %i..%i', (name, min, max) => {
    expect(patchSysctl(fresh(), { [name]: min })[name]).toBe(min);
    expect(patchSysctl(fresh(), { [name]: max })[name]).toBe(max);
    if (max - min >= 2) {
      const mid = Math.floor((min + max) / 2);
      expect(patchSysctl(fresh(), { [name]: mid })[name]).toBe(mid);
    }
  });

  it.each(RANGES)('%s rejects below %i, above %i and non-integers', (name, min, max) => {
    const field = `sysctl.${name}`;
    expectInvalid(() => patchSysctl(fresh(), { [name]: min - 1 }), field, String(min - 1));
    expectInvalid(() => patchSysctl(fresh(), { [name]: max + 1 }), field, String(max + 1));
    expectInvalid(() => patchSysctl(fresh(), { [name]: 0.5 }), field, '0.5');
    expectInvalid(() => patchSysctl(fresh(), { [name]: '1' }), field, '"1"');
    expectInvalid(() => patchSysctl(fresh(), { [name]: true }), field, 'true');
    expectInvalid(() => patchSysctl(fresh(), { [name]: null }), field, 'null');
    expectInvalid(() => patchSysctl(fresh(), { [name]: [min] }), field);
  });

  describe('sync_threshold: [threshold, period], threshold < period unless period is 0', () => {
    it.each([[[3, 50]], [[0, 1]], [[49, 50]], [[0, 0]], [[100, 0]], [[2147483646, 2147483647]]])(
      'accepts %j',
      (value) => {
        expect(patchSysctl(fresh(), { sync_threshold: value }).sync_threshold).toEqual(value);
      },
    );

    it.each([
      [[50, 50], 'sysctl.sync_threshold'],
      [[51, 50], 'sysctl.sync_threshold'],
      [[1, 1], 'sysctl.sync_threshold'],
      [[-1, 50], 'sysctl.sync_threshold[0]'],
      [[3, -1], 'sysctl.sync_threshold[1]'],
      [[1.5, 50], 'sysctl.sync_threshold[0]'],
      [[3, 2147483648], 'sysctl.sync_threshold[1]'],
      [[3, '50'], 'sysctl.sync_threshold[1]'],
      [[3], 'sysctl.sync_threshold'],
      [[3, 50, 1], 'sysctl.sync_threshold'],
      [[], 'sysctl.sync_threshold'],
      ['3 50', 'sysctl.sync_threshold'],
      [3, 'sysctl.sync_threshold'],
      [{ 0: 3, 1: 50 }, 'sysctl.sync_threshold'],
      [null, 'sysctl.sync_threshold'],
    ] as [unknown, string][])('rejects %j', (value, field) => {
      expectInvalid(() => patchSysctl(fresh(), { sync_threshold: value }), field);
    });

    it('shows the rejected pair', () => {
      expectInvalid(
        () => patchSysctl(fresh(), { sync_threshold: [60, 50] }),
        'sysctl.sync_threshold',
        '[60,50]',
      );
    });
  });

  it.each([
    ['amemthresh', { amemthresh: 1024 }],
    ['drop_entry', { drop_entry: 1 }],
    ['a misspelt name', { sloppy_tcpp: 1 }],
    ['an API-style name', { expireNodestConn: 1 }],
    ['__proto__', JSON.parse('{"__proto__":{"secure_tcp":3}}')],
    ['constructor', JSON.parse('{"constructor":{"prototype":{}}}')],
    ['prototype', JSON.parse('{"prototype":1}')],
  ])('rejects the unknown name %s, naming it', (_what, patch) => {
    const name = Object.keys(patch)[0];
    expectInvalid(() => patchSysctl(fresh(), patch), `sysctl.${name}`, JSON.stringify(name));
  });

  it.each([null, [], 'secure_tcp=3', 3])('rejects the non-object %j', (patch) => {
    expectInvalid(() => patchSysctl(fresh(), patch), 'sysctl');
  });
});
