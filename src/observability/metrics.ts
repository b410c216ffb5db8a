/**
 * Prometheus text exposition (format 0.0.4) of the engine's counters plus the service's own
 * decision counters. Written by hand: a few gauges and counters need no library.
 */
import type { Engine } from '../engine/engine.js';
import type { SyncDaemonView, SyncHealthView } from '../sync/health.js';

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

/** Conn-sync health per daemon: counters, and gauges for sequence and lag. */
const SYNC_SERIES: [keyof SyncHealthView, string, 'counter' | 'gauge', string][] = [
  ['messagesSent', 'ipvs_sync_messages_sent_total', 'counter', 'Sync messages published (master).'],
  ['entriesSent', 'ipvs_sync_entries_sent_total', 'counter', 'Entries published (master).'],
  ['snapshotsSent', 'ipvs_sync_snapshots_sent_total', 'counter', 'Resync snapshots published (master).'],
  ['publishErrors', 'ipvs_sync_publish_errors_total', 'counter', 'Messages that could not be published.'],
  ['messagesReceived', 'ipvs_sync_messages_received_total', 'counter', 'Sync messages received (backup).'],
  ['entriesApplied', 'ipvs_sync_entries_applied_total', 'counter', 'Entries installed (backup).'],
  [
    'entriesUnbound',
    'ipvs_sync_entries_unbound_total',
    'counter',
    'Entries without a local service or destination.',
  ],
  ['gaps', 'ipvs_sync_gaps_total', 'counter', 'Sequence gaps detected (backup).'],
  ['resyncsRequested', 'ipvs_sync_resyncs_requested_total', 'counter', 'Resyncs asked for (backup).'],
  ['lastSequence', 'ipvs_sync_last_sequence', 'gauge', 'Sequence number of the last message sent (master).'],
  ['lagMs', 'ipvs_sync_lag_milliseconds', 'gauge', 'Master-to-backup lag of the last message (backup).'],
  ['lagP99Ms', 'ipvs_sync_lag_p99_milliseconds', 'gauge', 'p99 lag over the recent messages (backup).'],
];

function renderSync(w: Writer, daemons: readonly SyncDaemonView[]): void {
  w.family('ipvs_sync_daemon_running', 'gauge', '1 per sync daemon role, 1 when its channel is connected.');
  for (const d of daemons) {
    w.sample(
      'ipvs_sync_daemon_running',
      { role: d.role, syncid: String(d.syncid) },
      d.state === 'running' ? 1 : 0,
    );
  }
  for (const [field, name, type, help] of SYNC_SERIES) {
    const rows = daemons.filter((d) => typeof d.health[field] === 'number');
    if (rows.length === 0) continue;
    w.family(name, type, help);
    for (const d of rows)
      w.sample(name, { role: d.role, syncid: String(d.syncid) }, d.health[field] as number);
  }
}

export async function renderMetrics(
  engine: Engine,
  decisions: DecisionCounters,
  syncDaemons: readonly SyncDaemonView[] = [],
): Promise<string> {
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
  renderSync(w, syncDaemons);
  w.family('ipvs_ready', 'gauge', '1 while the state store answers.');
  w.sample('ipvs_ready', {}, (await engine.ready()) ? 1 : 0);
  const mem = process.memoryUsage();
  w.family('process_resident_memory_bytes', 'gauge', 'Resident memory.');
  w.sample('process_resident_memory_bytes', {}, mem.rss);
  w.family('nodejs_heap_used_bytes', 'gauge', 'V8 heap in use.');
  w.sample('nodejs_heap_used_bytes', {}, mem.heapUsed);
  return w.text();
}
