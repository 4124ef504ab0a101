// Asserts that a call fails with a PbsError of the given code whose message mentions what it should.
import { expect } from 'vitest';
import { isPbsError } from '../../src/errors.js';

export function expectPbsError(fn: () => unknown, code: string, mention: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isPbsError(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(mention);
    return;
  }
  throw new Error('expected a PbsError');
}
