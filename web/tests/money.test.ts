import { describe, expect, it } from 'vitest'
import { currencyExponent, formatMoney, fromMinor, toMinor } from '@/lib/money'

// Intl may use a narrow no-break space between symbol and number in some locales.
const norm = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ')

describe('formatMoney', () => {
  it('formats KRW (0 fraction digits) in Korean and English', () => {
    expect(formatMoney(12000, 'ko', 'KRW')).toBe('₩12,000')
    expect(formatMoney(12000, 'en', 'KRW')).toBe('₩12,000')
    expect(formatMoney(0, 'ko', 'KRW')).toBe('₩0')
  })

  it('divides a 2-digit currency by 100', () => {
    expect(formatMoney(1234, 'en', 'USD')).toBe('$12.34')
    expect(norm(formatMoney(1234, 'ko', 'USD'))).toBe('US$12.34')
    expect(norm(formatMoney(500, 'en', 'EUR'))).toBe('€5.00')
  })

  it('formats negative amounts (refunds, charges)', () => {
    expect(formatMoney(-5000, 'en', 'KRW')).toBe('-₩5,000')
  })

  it('defaults to KRW when VITE_CURRENCY is unset', () => {
    expect(formatMoney(12000, 'en')).toBe('₩12,000')
  })

  it('knows each currency exponent from Intl', () => {
    expect(currencyExponent('KRW')).toBe(0)
    expect(currencyExponent('USD')).toBe(2)
    expect(currencyExponent('JPY')).toBe(0)
  })
})

describe('major ↔ minor units', () => {
  it('parses what a person types', () => {
    expect(toMinor('12000', 'KRW')).toBe(12000)
    expect(toMinor('12.34', 'USD')).toBe(1234)
    expect(toMinor('1,000', 'KRW')).toBe(1000)
    expect(toMinor('abc', 'KRW')).toBeNull()
    expect(toMinor('', 'KRW')).toBeNull()
  })

  it('prints minor units for an input field', () => {
    expect(fromMinor(1250, 'USD')).toBe('12.50')
    expect(fromMinor(12000, 'KRW')).toBe('12000')
  })
})
