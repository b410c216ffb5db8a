/**
 * Persistence templates (§5): the four key shapes of `ip_vs_sched_persist` (normal, FTP, port-zero
 * or FTP data, fwmark), SIP Call-ID keys, and template validity (`ip_vs_check_template`).
 */
import { ipFromWords, type Ip } from '../domain/address.js';
import type { Protocol } from '../domain/keys.js';
import { applyNetmask } from '../domain/netmask.js';
import type { Conn, Persistence, Service } from './model.js';

export interface TemplateShape {
  /** Lookup key in the template table. */
  readonly key: string;
  readonly protocol: Protocol | 'ip';
  /** The client network (masked address), port 0. */
  readonly caddr: Ip;
  readonly vaddr: Ip;
  readonly vport: number;
  /** Whether the template (and so its connections) keeps the dest's port (normal shape only). */
  readonly keepsDestPort: boolean;
}

export function templateKey(
  protocol: Protocol | 'ip',
  caddr: Ip,
  vaddr: Ip,
  vport: number,
  callId: string | null,
): string {
  const base = `${protocol}|${caddr.text}|${vaddr.text}|${vport}`;
  return callId === null ? base : `${base}|sip|${callId}`;
}

/** The template tuple for a packet to a persistent service (§5.1). */
export function templateShape(
  svc: Service,
  persistence: Persistence,
  protocol: Protocol,
  caddr: Ip,
  vaddr: Ip,
  vport: number,
  callId: string | null,
): TemplateShape {
  const snet = applyNetmask(caddr, persistence.netmask);
  if (svc.fwmark !== 0) {
    // The mark stands in the first 32 bits of the virtual address; shared by all protocols and VIPs.
    const markAddr = ipFromWords(svc.family, svc.family === 4 ? [svc.fwmark] : [svc.fwmark, 0, 0, 0]);
    return shape('ip', snet, markAddr, 0, false, callId);
  }
  if (vport === svc.port && svc.port !== 21) return shape(protocol, snet, vaddr, vport, true, callId);
  // FTP control (port 21), FTP data through the port-21 service, and port-zero services.
  return shape(protocol, snet, vaddr, 0, false, callId);
}

function shape(
  protocol: Protocol | 'ip',
  caddr: Ip,
  vaddr: Ip,
  vport: number,
  keepsDestPort: boolean,
  callId: string | null,
): TemplateShape {
  return {
    key: templateKey(protocol, caddr, vaddr, vport, callId),
    protocol,
    caddr,
    vaddr,
    vport,
    keepsDestPort,
  };
}

/**
 * `ip_vs_check_template`: a template is usable while its dest is available, and — when
 * `expire_quiescent_template` is on — has a non-zero weight. OVERLOAD is not looked at.
 */
export function templateIsValid(ct: Conn, expireQuiescentTemplate: boolean): boolean {
  const d = ct.dest;
  return d.available && !(expireQuiescentTemplate && d.weight === 0);
}
