/**
 * `ipvsadm -S [-n]` (§8.2, `print_service_entry` with FMT_RULE): one `-A` line per service and one
 * `-a` line per real server, services and servers sorted as ipvsadm sorts them (§8.5). Not saved,
 * as in ipvsadm: thresholds, timeouts, sync daemons, and the netmask of non-persistent services.
 */
import type { DestinationStatus, ServiceStatus } from '../engine/engine.js';
import {
  endpointText,
  maskText,
  schedFlagBits,
  schedFlagsText,
  SCHED_FLAGS_MASK,
  type LookupProtocol,
  type NameResolver,
} from './format.js';
import { int32 } from './libc.js';
import { sortDests, sortServices } from './sort.js';

const SERVICE_OPTION: Readonly<Record<string, string>> = {
  tcp: '-t',
  udp: '-u',
  sctp: '--sctp-service',
};

/** `fwd_switch`: `-m` NAT, `-i` tunnel, `-g` direct routing (and local). */
export function forwardSwitch(forward: string): string {
  return forward === 'masq' ? '-m' : forward === 'tunnel' ? '-i' : '-g';
}

/** The protocol a service's names are looked up with (fwmark services have none). */
export function lookupProtocol(svc: ServiceStatus): LookupProtocol {
  return svc.fwmark ? 'ip' : ((svc.protocol ?? 'tcp') as LookupProtocol);
}

/** The `<svc>` part of a rule: `-t a.b.c.d:port`, `-u …`, `--sctp-service …`, `-f N`, `-f N -6`. */
export function ruleServiceName(svc: ServiceStatus, numeric = true, resolve?: NameResolver): string {
  if (svc.fwmark) return `-f ${int32(svc.fwmark)}${svc.family === 'inet6' ? ' -6' : ''}`;
  const option = SERVICE_OPTION[svc.protocol ?? ''] ?? '--xxx-service';
  return `${option} ${endpointText(svc.address ?? '', svc.port ?? 0, lookupProtocol(svc), { numeric, resolve })}`;
}

/** The `-A` line of a service. */
export function serviceRule(svc: ServiceStatus, numeric = true, resolve?: NameResolver): string {
  let line = `-A ${ruleServiceName(svc, numeric, resolve)} -s ${svc.scheduler}`;
  if (svc.persistence) {
    line += ` -p ${svc.persistence.timeout}`;
    const mask = maskText(svc.family, svc.persistence.netmask);
    if (mask !== undefined) line += ` -M ${mask}`;
  }
  if (svc.pe) line += ` --pe ${svc.pe}`;
  if (svc.onePacket) line += ' -o';
  const bits = schedFlagBits(svc.schedFlags);
  if (bits & SCHED_FLAGS_MASK) line += ` -b ${schedFlagsText(bits, svc.scheduler)}`;
  return line;
}

/** The `-a` line of a real server (1.31: tunnel servers carry `--tun-type ipip`). */
export function destRule(
  svc: ServiceStatus,
  dest: DestinationStatus,
  numeric = true,
  resolve?: NameResolver,
): string {
  const dname = endpointText(dest.address, dest.port, lookupProtocol(svc), { numeric, resolve });
  const line = `-a ${ruleServiceName(svc, numeric, resolve)} -r ${dname} ${forwardSwitch(dest.forward)} -w ${dest.weight}`;
  return dest.forward === 'tunnel' ? `${line} --tun-type ipip` : line;
}

/**
 * The whole `ipvsadm -S` text (`-S -n` by default); every line ends with a newline, and no
 * rules give the empty string. `restoreRules` reads it back.
 */
export function formatSave(
  services: readonly ServiceStatus[],
  numeric = true,
  resolve?: NameResolver,
): string {
  let out = '';
  for (const svc of sortServices(services)) {
    out += serviceRule(svc, numeric, resolve) + '\n';
    for (const d of sortDests(svc.destinations)) out += destRule(svc, d, numeric, resolve) + '\n';
  }
  return out;
}
