import { expect } from 'vitest';
import { DumpError } from '../../src/core/errors.js';

/** The DumpError a promise rejects with (fails the test otherwise). */
export async function errorOf(p: Promise<unknown>): Promise<DumpError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DumpError);
    return err as DumpError;
  }
  throw new Error('expected a DumpError');
}
