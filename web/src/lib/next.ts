/** A `next` query value that is safe to go to: a path of this app, never another origin. */
export function safeNext(next: unknown): string {
  const v = Array.isArray(next) ? next[0] : next
  if (typeof v === 'string' && v.startsWith('/') && !v.startsWith('//') && !v.startsWith('/\\')) return v
  return '/'
}
