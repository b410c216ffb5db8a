/**
 * The shape shared by every "pick the best eligible dest in KLO" scheduler (lc, wlc, sed, nq, fo,
 * ovf): a scheduler is its eligibility rule, its strict "better than" comparison and its metric.
 * The BestTree keeps the pick exact and cheap; hooks keep the tree current.
 */
import { BestTree } from './klo-tree.js';
import { defineScheduler, type CandidateView, type SchedDest, type SchedulerModule } from './types.js';

export interface TreeRule {
  readonly name: string;
  /** Why `d` cannot be picked, or undefined when it is eligible. */
  skip(d: SchedDest): string | undefined;
  /** `a` strictly better than `b`: the kernel's scan would move from `b` to `a`. */
  better(a: SchedDest, b: SchedDest): boolean;
  metric(d: SchedDest): string;
}

export function treeScheduler(rule: TreeRule): SchedulerModule<BestTree<SchedDest>> {
  const refresh = (tree: BestTree<SchedDest>, _svc: unknown, d: SchedDest) => tree.update(d.pos);
  const rebuild = (tree: BestTree<SchedDest>, svc: { dests: readonly SchedDest[] }) =>
    tree.rebuild(svc.dests);
  return defineScheduler({
    name: rule.name,
    init(svc) {
      const tree = new BestTree<SchedDest>((d) => rule.skip(d) === undefined, rule.better);
      tree.rebuild(svc.dests);
      return tree;
    },
    addDest: rebuild,
    delDest: rebuild,
    updDest: refresh,
    countersChanged: refresh,
    schedule: (tree) => tree.best(),
    describe: (_tree, _svc, d): CandidateView => ({ metric: rule.metric(d), skip: rule.skip(d) }),
  });
}

/** The common skip reasons, in the order the kernel tests them. */
export function skipOverloadedOrQuiesced(d: SchedDest): string | undefined {
  if (d.overloaded) return 'overloaded';
  if (d.weight <= 0) return 'weight 0';
  return undefined;
}
