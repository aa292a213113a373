const formatters = new Map<string, Intl.DateTimeFormat>()

/** An ISO date-time in the reader's locale, e.g. `2026. 12. 6. 오후 3:04` / `Dec 6, 2026, 3:04 PM`. */
export function formatDateTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  let f = formatters.get(locale)
  if (!f) {
    f = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' })
    formatters.set(locale, f)
  }
  return f.format(d)
}
