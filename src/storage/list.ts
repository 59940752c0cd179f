/**
 * Listings across pages.
 *
 * @module
 */

import type { ListOptions, ObjectInfo, ObjectStore } from "./types.ts";

/** Every object a listing of `prefix` returns, page after page (prefixes are not yielded). */
export async function* listObjects(
  store: ObjectStore,
  prefix: string,
  options: Omit<ListOptions, "cursor"> = {},
): AsyncGenerator<ObjectInfo> {
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, { ...options, cursor });
    yield* page.objects;
    cursor = page.cursor;
  } while (cursor !== undefined);
}
