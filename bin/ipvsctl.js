#!/usr/bin/env node
// ipvsctl: ipvsadm's command line against a running ipvs-scheduler service (src/cli/ipvsctl.ts).
// The sources are TypeScript; tsx compiles them on the fly.
import { register } from 'tsx/esm/api';

register();
const { cli } = await import('../src/cli/ipvsctl.ts');
await cli();
