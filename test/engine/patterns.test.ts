import { describe, expect, it } from 'vitest';
import { matchesResource, patternCovers, patternProblem } from '../../src/engine/patterns.ts';

describe('pattern grammar', () => {
  it('accepts well-formed patterns', () => {
    for (const p of ['db://orders/*', 's3://logs/app/**', 'k8s://ns/pods/web-1', 'azblob://acct/c/p/**', 'gs://b/x*y']) {
      expect(patternProblem(p), p).toBeNull();
    }
  });

  it.each([
    ['', 'may not be empty'],
    ['orders/*', 'expected <scheme>://<path>'],
    ['db://', 'may not be empty'],
    ['DB://orders', 'must start with a lowercase letter'],
    ['db://orders /x', 'whitespace'],
    ['db://orders\t/x', 'whitespace'],
    ['db://o/***', 'three or more'],
    [`db://${'a'.repeat(510)}`, 'at most 512'],
  ])('refuses %j', (pattern, message) => {
    expect(patternProblem(pattern)).toContain(message);
  });
});

describe('matching resources', () => {
  it.each([
    ['db://orders/*', 'db://orders/42', true],
    ['db://orders/*', 'db://orders/42/items', false],
    ['db://orders/*', 'db://orders', false],
    ['db://orders/*', 'db://customers/1', false],
    ['s3://logs/app/**', 's3://logs/app/2026/11/23.log', true],
    ['s3://logs/app/**', 's3://logs/application/x', false],
    ['s3://logs/**/x.log', 's3://logs/a/b/x.log', true],
    ['db://orders/outbox', 'db://orders/outbox', true],
    ['db://orders/outbox', 'db://orders/Outbox', false],
    ['db://o/a.b', 'db://o/aXb', false],
    ['gs://b/x*y', 'gs://b/x123y', true],
  ])('%s vs %s', (pattern, resource, expected) => {
    expect(matchesResource(pattern, resource)).toBe(expected);
  });
});

describe('coverage (down-scoping)', () => {
  it.each([
    ['db://orders/*', 'db://orders/42', true],
    ['db://orders/*', 'db://orders/4*', true],
    ['db://orders/*', 'db://orders/*', true],
    ['db://orders/*', 'db://orders/**', false],
    ['db://orders/*', 'db://orders/42/items', false],
    ['db://orders/*', 'db://orders/*/items', false],
    ['s3://logs/**', 's3://logs/app/**', true],
    ['s3://logs/**', 's3://logs/a/*/b', true],
    ['s3://logs/app/**', 's3://logs/**', false],
    ['s3://logs/app/**', 's3://logs/ap*', false],
    ['db://orders/outbox', 'db://orders/*', false],
    ['db://orders/outbox', 'db://orders/outbox', true],
    ['db://**', 's3://x', false],
  ])('%s covers %s: %s', (outer, inner, expected) => {
    expect(patternCovers(outer, inner)).toBe(expected);
  });

  it('never says yes when a resource of the inner pattern escapes the outer one (random check)', () => {
    const alphabet = ['a', 'b', '/', '*', '**'];
    const samples = ['a', 'b', 'ab', 'a/b', 'a/a/b', '', 'b/a', 'aa/bb/ab'];
    let rnd = 7;
    const next = () => (rnd = (rnd * 1103515245 + 12345) % 2 ** 31) % alphabet.length;
    const gen = () => Array.from({ length: 1 + (next() % 4) }, () => alphabet[next()]).join('').replace(/\*{3,}/g, '**');
    for (let i = 0; i < 3000; i++) {
      const outer = `x://${gen()}`;
      const inner = `x://${gen()}`;
      if (!patternCovers(outer, inner)) continue;
      for (const s of samples) {
        const resource = `x://${s}`;
        if (matchesResource(inner, resource)) expect(matchesResource(outer, resource), `${outer} ⊇ ${inner} on ${resource}`).toBe(true);
      }
    }
  });
});
