/**
 * What must not outlive the process: temporary files of outputs not yet
 * committed, temporary folders of inflated inputs. Each owner registers a
 * cleanup and removes it when it finishes normally; on an error, SIGINT,
 * SIGTERM or SIGHUP the CLI runs whatever is still registered.
 */
type Cleanup = () => Promise<void>;

const pending = new Set<Cleanup>();

/** Register `fn`; returns the function that unregisters it. */
export function onCleanup(fn: Cleanup): () => void {
  pending.add(fn);
  return () => {
    pending.delete(fn);
  };
}

/** Run and forget every registered cleanup; never throws. */
export async function runCleanups(): Promise<void> {
  const all = [...pending];
  pending.clear();
  await Promise.all(all.map((fn) => fn().catch(() => undefined)));
}

/** How many cleanups are registered (tests: nothing may be left behind). */
export function pendingCleanups(): number {
  return pending.size;
}
