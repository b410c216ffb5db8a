/** A service as the API shows it (API.md: ServiceStatus), from its configuration: both engines' views. */
import { formatNetmask } from '../domain/netmask.js';
import { schedFlagNames } from '../schedulers/registry.js';
import type { DestinationStatus, ServiceStatus, StatsView } from './engine.js';
import type { ServiceConfig } from './specs.js';

export function serviceStatus(
  cfg: ServiceConfig,
  destinations: DestinationStatus[],
  stats: StatsView,
): ServiceStatus {
  const view: ServiceStatus = {
    key: cfg.key,
    family: cfg.family === 6 ? 'inet6' : 'inet',
    scheduler: cfg.scheduler,
    schedFlags: schedFlagNames(cfg.schedFlags, cfg.scheduler),
    persistence: cfg.persistence
      ? { timeout: cfg.persistence.timeoutSec, netmask: formatNetmask(cfg.persistence.netmask) }
      : null,
    onePacket: cfg.onePacket,
    pe: cfg.pe,
    destinations,
    stats,
  };
  if (cfg.id.kind === 'addr') {
    view.protocol = cfg.id.protocol;
    view.address = cfg.id.ip.text;
    view.port = cfg.id.port;
  } else {
    view.fwmark = cfg.id.fwmark;
  }
  return view;
}
