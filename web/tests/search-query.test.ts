import { describe, expect, it } from 'vitest'
import { filtersFromQuery, queryFromFilters } from '@/lib/search-query'

describe('search filters in the URL', () => {
  it('round-trips every filter', () => {
    const f = { category: 'c1', q: 'shirt', min_price: 1000, max_price: 5000, in_stock: true, sort: 'price_asc' as const }
    const q = queryFromFilters(f)
    expect(q).toEqual({ category: 'c1', q: 'shirt', min_price: '1000', max_price: '5000', in_stock: '1', sort: 'price_asc' })
    expect(filtersFromQuery(q as Record<string, string>)).toEqual(f)
  })

  it('drops unusable values instead of sending them', () => {
    expect(filtersFromQuery({ min_price: '-3', max_price: 'x', sort: 'cheapest', in_stock: 'no', q: '  ' })).toEqual({})
  })

  it('leaves the default sort out of the URL', () => {
    expect(queryFromFilters({ sort: 'newest' })).toEqual({})
  })
})
