// Shared by the cloud module tests.

import { expect } from 'vitest';
import { IamFieldError } from '../../src/iam/errors.ts';

/** Runs fn, which must throw an IamFieldError; returns its field and message. */
export function refusal(fn: () => unknown): { field: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(IamFieldError);
    const e = err as IamFieldError;
    expect(e.code).toBe('ERR_IAM_INVALID');
    return { field: e.field, message: e.message };
  }
  throw new Error('expected an IamFieldError');
}
