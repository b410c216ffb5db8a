/**
 * Prometheus text exposition (format 0.0.4) of the engine's counters plus the service's own
 * decision counters. Written by hand: a few gauges and counters need no library.
 */
import type { Engine } from '../engine/engine.js';

/** Decisions by outcome, counted by the transports' shared handler. */
export class DecisionCounters {
  private readonly counts: Record<string, number> = Object.create(null);

  count(outcome: string): void {
    this.counts[outcome] = (this.counts[outcome] ?? 0) + 1;
  }

  get byOutcome(): Map<string, number> {
    return new Map(Object.entries(this.counts));
  }
}

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

class Writer {
  private readonly lines: string[] = [];

  family(name: string, type: 'gauge' | 'counter', help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: Record<string, string>, value: number): void {
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${escape(v)}"`)
      .join(',');
    this.lines.push(`${name}${l ? `{${l}}` : ''} ${value}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

export async function renderMetrics(engine: Engine, decisions: DecisionCounters): Promise<string> {
  const services = await engine.listServices();
  const stats = await engine.getStats();
  const w = new Writer();
  const destGauges: [string, string, (d: (typeof services)[0]['destinations'][0]) => number][] = [
    ['ipvs_destination_active_connections', 'Active connections (activeconns).', (d) => d.activeConns],
    ['ipvs_destination_inactive_connections', 'Inactive connections (inactconns).', (d) => d.inactiveConns],
    [
      'ipvs_destination_persistent_connections',
      'Persistence templates (persistconns).',
      (d) => d.persistentConns,
    ],
    ['ipvs_destination_weight', 'Configured weight (0 = quiesced).', (d) => d.weight],
    ['ipvs_destination_overloaded', '1 while the OVERLOAD flag is set.', (d) => (d.overloaded ? 1 : 0)],
  ];
  for (const [name, help, value] of destGauges) {
    w.family(name, 'gauge', help);
    for (const s of services)
      for (const d of s.destinations) w.sample(name, { service: s.key, destination: d.key }, value(d));
  }
  const counters: [string, string, keyof (typeof stats)['total']][] = [
    ['connections_total', 'Connections scheduled.', 'conns'],
    ['in_packets_total', 'Packets client to server, as reported.', 'inPkts'],
    ['out_packets_total', 'Packets server to client, as reported.', 'outPkts'],
    ['in_bytes_total', 'Bytes client to server, as reported.', 'inBytes'],
    ['out_bytes_total', 'Bytes server to client, as reported.', 'outBytes'],
  ];
  for (const [suffix, help, field] of counters) {
    w.family(`ipvs_service_${suffix}`, 'counter', help);
    for (const s of stats.services) w.sample(`ipvs_service_${suffix}`, { service: s.key }, s.stats[field]);
    w.family(`ipvs_destination_${suffix}`, 'counter', help);
    for (const s of stats.services) {
      for (const d of s.destinations)
        w.sample(`ipvs_destination_${suffix}`, { service: s.key, destination: d.key }, d.stats[field]);
    }
  }
  w.family('ipvs_connection_rate', 'gauge', 'Estimated new connections per second (2 s EWMA).');
  for (const s of stats.services) w.sample('ipvs_connection_rate', { service: s.key }, s.stats.cps);
  w.family('ipvs_decisions_total', 'counter', 'Schedule calls by outcome.');
  for (const [outcome, n] of decisions.byOutcome) w.sample('ipvs_decisions_total', { outcome }, n);
  w.family('ipvs_ready', 'gauge', '1 while the state store answers.');
  w.sample('ipvs_ready', {}, (await engine.ready()) ? 1 : 0);
  const mem = process.memoryUsage();
  w.family('process_resident_memory_bytes', 'gauge', 'Resident memory.');
  w.sample('process_resident_memory_bytes', {}, mem.rss);
  w.family('nodejs_heap_used_bytes', 'gauge', 'V8 heap in use.');
  w.sample('nodejs_heap_used_bytes', {}, mem.heapUsed);
  return w.text();
}
