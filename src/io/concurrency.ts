/**
 * Running tasks a few at a time.
 *
 * @module
 */

/**
 * Calls `fn` on every item, at most `limit` at once, in order of the items. After a failure no
 * further item is started; the calls already running are awaited and the first failure is thrown.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | null = null;
  const worker = async () => {
    while (failed === null && next < items.length) {
      const index = next++;
      try {
        await fn(items[index], index);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  const workers = Math.min(Math.max(1, Math.floor(limit)), items.length);
  await Promise.all(Array.from({ length: workers }, worker));
  if (failed !== null) throw (failed as { error: unknown }).error;
}
