/**
 * Money: amounts travel as integers in the currency's minor units (`*_minor`). The shop's
 * currency is `VITE_CURRENCY` (ISO 4217, default KRW); the exponent (0 for KRW, 2 for USD/EUR)
 * is what Intl says the currency uses.
 */

export const DEFAULT_CURRENCY = 'KRW'

export function shopCurrency(): string {
  const c = import.meta.env?.VITE_CURRENCY
  return typeof c === 'string' && /^[A-Za-z]{3}$/.test(c) ? c.toUpperCase() : DEFAULT_CURRENCY
}

const formatters = new Map<string, Intl.NumberFormat>()

function formatter(locale: string, currency: string): Intl.NumberFormat {
  const key = `${locale}|${currency}`
  let f = formatters.get(key)
  if (!f) {
    f = new Intl.NumberFormat(locale, { style: 'currency', currency })
    formatters.set(key, f)
  }
  return f
}

/** How many minor units make a major one, as a power of ten (KRW 0, USD 2). */
export function currencyExponent(currency: string = shopCurrency(), locale = 'en'): number {
  return formatter(locale, currency).resolvedOptions().maximumFractionDigits ?? 0
}

/** `12000` KRW → `₩12,000`; `1234` USD → `$12.34` (en). */
export function formatMoney(minor: number, locale: string, currency: string = shopCurrency()): string {
  const f = formatter(locale, currency)
  const exp = f.resolvedOptions().maximumFractionDigits ?? 0
  return f.format(minor / 10 ** exp)
}

/** A major-unit amount typed by a person (`12.5`) → minor units (`1250`); null when not a number. */
export function toMinor(major: string | number, currency: string = shopCurrency()): number | null {
  const text = String(major).trim().replace(/,/g, '')
  if (text === '' || !/^-?\d+(\.\d+)?$/.test(text)) return null
  const exp = currencyExponent(currency)
  return Math.round(Number(text) * 10 ** exp)
}

/** Minor units → a plain major-unit string for an input field (`1250` USD → `12.50`). */
export function fromMinor(minor: number, currency: string = shopCurrency()): string {
  const exp = currencyExponent(currency)
  return exp === 0 ? String(minor) : (minor / 10 ** exp).toFixed(exp)
}

/** The step attribute of a money input: `1` for KRW, `0.01` for USD. */
export function moneyStep(currency: string = shopCurrency()): string {
  const exp = currencyExponent(currency)
  return exp === 0 ? '1' : (1 / 10 ** exp).toFixed(exp)
}
