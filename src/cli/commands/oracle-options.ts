/** --ram-oracle SPEC...: the vmcore pfn_is_ram model chain. */
import { UsageError } from '../../core/errors.js';
import type { RamOracle } from '../../ram/oracle.js';
import type { OracleApi } from '../../ram/chain.js';

export const oracleOptions = {
  'ram-oracle': {
    type: 'string',
    array: true,
    nargs: 1,
    describe: 'Which pfns the hypervisor backs: none, ranges:FILE, xen-hvm:FILE, xen-pv:FILE, virtio-mem:FILE, module:./oracle.js (several chain: any "not RAM" wins)',
  },
  'ram-oracle-api': {
    type: 'string',
    default: 'list',
    describe: "Callback semantics of the kdump kernel: 'list' (vmcore_cb, 5.16+) or 'legacy' (one hook, up to 5.15)",
  },
} as const;

export async function buildOracle(specs: readonly string[] | undefined, api: unknown = 'list'): Promise<RamOracle | undefined> {
  if (api !== 'list' && api !== 'legacy') throw new UsageError(`--ram-oracle-api '${String(api)}' is not list or legacy`);
  if (!specs || specs.length === 0) return undefined;
  const { oracleFromSpecs } = await import('../../ram/chain.js');
  return oracleFromSpecs(specs, api as OracleApi);
}
