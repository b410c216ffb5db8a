/**
 * Which virtual service a packet belongs to (`ip_vs_service_find`, §2.2): the fwmark service first,
 * then the exact protocol+address+port, then the port-21 service for FTP data, then port zero.
 */
import { IpvsError } from '../domain/errors.js';
import { formatEndpoint, type Endpoint, type Protocol } from '../domain/keys.js';
import type { Service } from './model.js';

/** `net.ipv4.ip_unprivileged_port_start`, default 1024: FTP data may use ports from here up. */
export const UNPRIVILEGED_PORT_START = 1024;

export interface ServiceIndex {
  get(key: string): Service | undefined;
  /** Number of services on port 21 and on port 0 (the kernel's ftpsvc / nullsvc counters). */
  readonly ftpServices: number;
  readonly portZeroServices: number;
}

export type LookupHow = 'fwmark' | 'exact' | 'ftp-data' | 'port-zero';

export function findService(
  index: ServiceIndex,
  protocol: Protocol,
  virtual: Endpoint,
  fwmark: number,
): { service: Service; how: LookupHow } | undefined {
  const { ip: vaddr, port: vport } = virtual;
  if (fwmark !== 0) {
    const svc = index.get(`${vaddr.family === 6 ? 'fwm6' : 'fwm'}:${fwmark}`);
    if (svc) return { service: svc, how: 'fwmark' };
  }
  const exact = index.get(`${protocol}:${virtual.text}`);
  if (exact) return { service: exact, how: 'exact' };
  if (protocol === 'tcp' && index.ftpServices > 0 && (vport === 20 || vport >= UNPRIVILEGED_PORT_START)) {
    const ftp = index.get(`tcp:${formatEndpoint(vaddr, 21)}`);
    if (ftp) return { service: ftp, how: 'ftp-data' };
  }
  if (index.portZeroServices > 0) {
    const zero = index.get(`${protocol}:${formatEndpoint(vaddr, 0)}`);
    if (zero) return { service: zero, how: 'port-zero' };
  }
  return undefined;
}

/** NO_SERVICE for a packet no service takes; both engines answer with this text. */
export function noServiceFor(protocol: Protocol, virtual: Endpoint, fwmark: number): IpvsError {
  const mark = fwmark ? ` (fwmark ${fwmark})` : '';
  return new IpvsError('NO_SERVICE', `virtual: no service for ${protocol} ${virtual.text}${mark}`, 'virtual');
}
