/** --ram-oracle SPEC...: the vmcore pfn_is_ram model chain. */
import { UsageError } from '../../core/errors.js';
import type { RamOracle } from '../../ram/oracle.js';

export const oracleOptions = {
  'ram-oracle': {
    type: 'string',
    array: true,
    describe: 'Which pfns the hypervisor backs: none, ranges:FILE, xen-hvm:FILE, xen-pv:FILE, virtio-mem:FILE, module:./oracle.js (several chain)',
  },
} as const;

export async function buildOracle(specs: readonly string[] | undefined): Promise<RamOracle | undefined> {
  if (!specs || specs.length === 0) return undefined;
  const { oracleFromSpecs } = await import('../../ram/chain.js').catch(() => {
    throw new UsageError('--ram-oracle is not available in this build');
  });
  return oracleFromSpecs(specs);
}
