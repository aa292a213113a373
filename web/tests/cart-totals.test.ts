import { describe, expect, it } from 'vitest'
import { cartTotals, isPurchasable, lineTotal } from '@/lib/cart-totals'

const line = (id: string, qty: number, price: number | null, on_sale = true) => ({
  id,
  qty,
  on_sale,
  unit_price_minor: price,
})

describe('cart totals', () => {
  it('sums the on-sale lines only', () => {
    const t = cartTotals([line('a', 2, 12000), line('b', 1, 5000), line('c', 3, 999, false)])
    expect(t.subtotal_minor).toBe(29000)
    expect(t.units).toBe(3)
    expect(t.line_ids).toEqual(['a', 'b'])
    expect(t.excluded).toBe(1)
  })

  it('leaves out a line whose price is unknown', () => {
    const t = cartTotals([line('a', 1, null), line('b', 2, 100)])
    expect(t.subtotal_minor).toBe(200)
    expect(t.line_ids).toEqual(['b'])
    expect(isPurchasable(line('a', 1, null))).toBe(false)
  })

  it('is zero for an empty cart', () => {
    expect(cartTotals([])).toEqual({ subtotal_minor: 0, units: 0, line_ids: [], excluded: 0 })
  })

  it('computes a line total even off sale (shown, not charged)', () => {
    expect(lineTotal(line('a', 3, 1500, false))).toBe(4500)
    expect(lineTotal(line('a', 3, null))).toBeNull()
  })
})
