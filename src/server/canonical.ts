// The one form of a request path that routing, the ACL check and the handler
// all use.

/**
 * No leading slash, no repeated slashes, and a trailing slash only on lists
 * (`sys/mounts//victim/` is `sys/mounts/victim`). Names a backend compares
 * without case are made canonical later, by the backend that knows them
 * (its resolve-path).
 */
export function canonicalPath(path: string, list: boolean): string {
  const out = path.replace(/\/{2,}/g, '/').replace(/^\//, '').replace(/\/$/, '');
  return list ? `${out}/` : out;
}
