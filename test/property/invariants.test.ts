/**
 * Property tests: random admin / scheduling / connection / clock sequences over a small universe
 * keep the dest counters equal to what the live entries say (ipvs-semantics.md §4, §5.5, §6), all
 * entries eventually expire, and a non-persistent decision never names an unusable dest (§3).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Connection, EngineSnapshot } from '../../src/engine/engine.js';
import {
  applyOp,
  checkDrained,
  checkInvariants,
  drain,
  InvariantError,
  newHarness,
  scenarioArb,
  setupOps,
  type Op,
} from './ops.js';

const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 200);

function describeOp(op: Op): string {
  return JSON.stringify(op);
}

describe('engine invariants under random operation sequences', () => {
  it('counters match live entries after every step, and everything drains to zero', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(), async (scenario) => {
        const h = newHarness(scenario.seed);
        let snap: EngineSnapshot = await h.engine.snapshot();
        const steps = [...setupOps(scenario), ...scenario.ops];
        for (const [i, op] of steps.entries()) {
          await applyOp(h, op, snap.connections);
          snap = await h.engine.snapshot();
          try {
            checkInvariants(snap);
          } catch (err) {
            if (err instanceof InvariantError)
              err.message = `after step ${i} ${describeOp(op)}: ${err.message}`;
            throw err;
          }
        }
        checkDrained(await drain(h));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a fresh non-persistent decision names a listed dest with weight > 0 and no OVERLOAD', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(), async (scenario) => {
        const h = newHarness(scenario.seed);
        let live: Connection[] = [];
        for (const [i, op] of [...setupOps(scenario), ...scenario.ops].entries()) {
          // What the scheduler sees: the state just before the decision (same clock instant).
          const before = op.op === 'schedule' ? await h.engine.snapshot() : undefined;
          const { scheduled } = await applyOp(h, op, live);
          live = (await h.engine.snapshot()).connections;
          if (!before || !scheduled || scheduled.reused) continue;
          const svc = before.services.find((s) => s.key === scheduled.service);
          if (!svc) throw new Error(`step ${i}: decision for unknown service ${scheduled.service}`);
          // Template hits may go to quiesced / overloaded dests (§4), and lblc reuses its cached dest
          // whatever its OVERLOAD flag (§3.7).
          if (svc.persistence !== null || svc.scheduler === 'lblc') continue;
          const d = svc.destinations.find((x) => x.key === scheduled.destination);
          const where = `step ${i} ${describeOp(op)}: ${svc.scheduler} chose ${scheduled.destination}`;
          if (!d) throw new Error(`${where}, which is not listed in ${svc.key}`);
          if (d.weight <= 0) throw new Error(`${where}, which has weight ${d.weight}`);
          if (d.overloaded) throw new Error(`${where}, which is overloaded`);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
