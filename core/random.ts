/**
 * The one seeded random generator of the project: demo and test data, chaos
 * fault draws and segmentation sampling all draw from it, so a seed names one
 * result everywhere. mulberry32 rather than a package generator because fixtures,
 * test thresholds and trained models are pinned to its sequences.
 */

/** mulberry32: tiny, fast, good enough for sampling and synthetic data; yields uint32. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A 32-bit seed for a sub-stream, so each customer's draws do not depend on anyone else's. */
export function deriveSeed(seed: number, ...parts: ReadonlyArray<string | number>): number {
  // FNV-1a over the parts, then murmur3's finaliser to spread nearby inputs.
  let h = 0x811c9dc5;
  for (const ch of [seed, ...parts].join('\u001f')) {
    h = Math.imul(h ^ (ch.codePointAt(0) ?? 0), 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  uint32(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K;
  normal(mean: number, sd: number): number;
  /** Log-normal parameterised by its median, which is what behaviour is easiest to describe by. */
  logNormal(median: number, sigma: number): number;
  poisson(mean: number): number;
  /** A version 4 UUID built from the stream. */
  uuid(): string;
  hex(length: number): string;
}

export function createRng(seed: number): Rng {
  const uint32 = mulberry32(seed);
  const next = () => uint32() / 0x1_0000_0000;
  let uuidsIssued = 0;
  const rng: Rng = {
    next,
    uint32,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (probability) => next() < probability,
    pick<T>(items: readonly T[]): T {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error('Rng.pick: expected a non-empty list, found an empty one');
      return item;
    },
    weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
      const entries = Object.entries(weights) as Array<[K, number]>;
      const total = entries.reduce((sum, [, w]) => sum + w, 0);
      let roll = next() * total;
      for (const [key, weight] of entries) {
        roll -= weight;
        if (roll < 0) return key;
      }
      const last = entries[entries.length - 1];
      if (last === undefined) throw new Error('Rng.weighted: expected at least one weight, found none');
      return last[0];
    },
    normal(mean, sd) {
      // Box-Muller; 1 - next() keeps log away from 0.
      const u = 1 - next();
      const v = next();
      return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    logNormal: (median, sigma) => median * Math.exp(rng.normal(0, sigma)),
    poisson(mean) {
      if (mean <= 0) return 0;
      if (mean > 50) return Math.max(0, Math.round(rng.normal(mean, Math.sqrt(mean))));
      // Knuth: exact, and the means used here are small.
      const limit = Math.exp(-mean);
      let k = 0;
      let p = next();
      while (p > limit) {
        k += 1;
        p *= next();
      }
      return k;
    },
    // Generators of different seeds walk the same 2^32-state cycle of mulberry32 from different
    // points, so two customers' generators can overlap and draw identical words. So the first word
    // carries this generator's seed and the fourth a count of its uuids (both words are still drawn,
    // so every later value stays the same): uuids of one generator never repeat, and overlapping
    // generators differ by seed.
    uuid() {
      const bytes = new Uint8Array(16);
      for (let i = 0; i < 16; i += 4) {
        const drawn = uint32();
        const word = i === 0 ? (drawn ^ seed) >>> 0 : i === 12 ? uuidsIssued++ >>> 0 : drawn;
        bytes[i] = word >>> 24;
        bytes[i + 1] = (word >>> 16) & 0xff;
        bytes[i + 2] = (word >>> 8) & 0xff;
        bytes[i + 3] = word & 0xff;
      }
      bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
      bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
      const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
    hex(length) {
      let out = '';
      while (out.length < length) out += uint32().toString(16).padStart(8, '0');
      return out.slice(0, length);
    },
  };
  return rng;
}
