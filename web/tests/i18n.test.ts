import { describe, expect, it } from 'vitest'
import en from '@/i18n/en'
import ko from '@/i18n/ko'
import { pickLocale } from '@/i18n'

function keys(obj: object, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' ? keys(v as object, `${prefix}${k}.`) : [`${prefix}${k}`],
  )
}

describe('i18n messages', () => {
  it('ko and en have exactly the same keys', () => {
    const e = keys(en).sort()
    const k = keys(ko).sort()
    expect(k.filter((x) => !e.includes(x))).toEqual([])
    expect(e.filter((x) => !k.includes(x))).toEqual([])
  })

  it('no message is empty, and both use the same placeholders', () => {
    const get = (o: object, path: string) => path.split('.').reduce<unknown>((a, p) => (a as Record<string, unknown>)[p], o)
    for (const key of keys(en)) {
      const a = String(get(en, key))
      const b = String(get(ko, key))
      expect(a.trim(), key).not.toBe('')
      expect(b.trim(), key).not.toBe('')
      const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort()
      expect(ph(b), key).toEqual(ph(a))
    }
  })

  it('picks the stored locale, else the first browser language we speak', () => {
    expect(pickLocale('ko', ['en-US'])).toBe('ko')
    expect(pickLocale(null, ['ko-KR', 'en'])).toBe('ko')
    expect(pickLocale(null, ['fr-FR', 'en-GB'])).toBe('en')
    expect(pickLocale('xx', ['de'])).toBe('en')
  })
})

describe('keys used by the code', () => {
  it('every t(…) key in src exists in the messages', async () => {
    const { readFileSync, readdirSync, statSync } = await import('node:fs')
    const { join } = await import('node:path')
    const files: string[] = []
    const walk = (dir: string) => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f)
        if (statSync(p).isDirectory()) walk(p)
        else if (/\.(vue|ts)$/.test(f) && !f.endsWith('.d.ts')) files.push(p)
      }
    }
    walk(join(__dirname, '..', 'src'))
    const has = (key: string) =>
      key.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), en) !== undefined
    const missing: string[] = []
    for (const file of files) {
      const text = readFileSync(file, 'utf8')
      for (const m of text.matchAll(/\bt\('([a-zA-Z0-9_.]+)'/g)) if (!has(m[1]!)) missing.push(`${file}: ${m[1]}`)
      if (file.endsWith('router.ts')) {
        for (const m of text.matchAll(/title: '([a-zA-Z0-9_.]+)'/g)) if (!has(m[1]!)) missing.push(`${file}: ${m[1]}`)
      }
    }
    expect(missing).toEqual([])
  })

  it('dynamic keys cover every value of the API enums', () => {
    const check = (prefix: string, values: string[]) => {
      for (const v of values) expect(en, `${prefix}.${v}`).toHaveProperty(`${prefix}.${v}`.split('.'))
    }
    check('order.statuses', ['created', 'cancel_requested', 'cancelled', 'shipped', 'delivered'])
    check('payment.statuses', ['pending_order', 'completed', 'cancelled', 'refunded'])
    check('adminItem.statuses', ['on_sale', 'sold_out', 'hidden'])
    check('wallet.kinds', ['top_up', 'charge', 'refund'])
    check('adminStock.reasons', ['initial', 'reservation', 'release', 'admin_increase', 'admin_decrease'])
    check('search.sorts', ['newest', 'price_asc', 'price_desc', 'rating', 'best_selling'])
    expect(en.checkout).toHaveProperty('method_wallet')
    expect(en.checkout).toHaveProperty('method_card')
  })
})
