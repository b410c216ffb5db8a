import { join } from 'node:path';
import { describe, it } from 'vitest';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { loadVectors, manualClockEngine, runVector } from './runner.js';

const vectors = loadVectors(join(import.meta.dirname, 'vectors'));
const factory = manualClockEngine((clock, randomInt) => new MemoryEngine({ clock, randomInt }));

describe('conformance vectors on the memory engine', () => {
  for (const { file, vector } of vectors) {
    it(`${file}: ${vector.name}`, () => runVector(factory, vector));
  }
});
