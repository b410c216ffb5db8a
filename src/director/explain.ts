/**
 * Explanations of a decision, built from the scheduler module's own `describe` and notes — the
 * same code that decides, never a second implementation.
 */
import type { Candidate, Explanation } from '../engine/engine.js';
import type { SchedService, SchedulerModule } from '../schedulers/types.js';
import type { Dest, Service } from './model.js';

/** Each destination of `svc` in KLO as `module` sees it (its own `describe`): metric or skip reason. */
export function describeCandidates<S>(module: SchedulerModule<S>, state: S, svc: SchedService): Candidate[] {
  return svc.dests.map((d) => {
    const view = module.describe(state, svc, d);
    const c: Candidate = {
      destination: d.key,
      weight: d.weight,
      activeConns: d.activeConns,
      inactiveConns: d.inactiveConns,
      overloaded: d.overloaded,
      available: d.available,
    };
    if (view.metric !== undefined) c.metric = view.metric;
    if (view.skip !== undefined) c.skipped = view.skip;
    return c;
  });
}

export class ExplainRecorder {
  readonly notes: string[] = [];
  lookup = 'exact';
  template: Explanation['template'] = 'none';
  existing: Explanation['existing'] = 'none';
  readonly note = (text: string): void => {
    this.notes.push(text);
  };

  /** Candidates in KLO with the scheduler's view of each, before the decision changes anything. */
  candidates(svc: Service): Candidate[] {
    return describeCandidates(svc.scheduler, svc.schedState, svc);
  }

  finish(svc: Service, candidates: Candidate[], chosen: Dest | null): Explanation {
    return {
      scheduler: svc.schedulerName,
      lookup: this.lookup,
      template: this.template,
      existing: this.existing,
      candidates,
      chosen: chosen ? chosen.key : null,
      notes: this.notes,
    };
  }
}
