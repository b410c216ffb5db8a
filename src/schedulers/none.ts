/**
 * `none` — no scheduler bound (§1.1): every decision that needs a scheduler fails; existing
 * persistence templates keep routing their clients.
 */
import { defineScheduler } from './types.js';

export const none = defineScheduler<null>({
  name: 'none',
  init: () => null,
  schedule: () => null,
  describe: () => ({ skip: 'no scheduler bound' }),
});
