/**
 * The search page's filters live in the URL query (shareable, back-button friendly):
 * `?category=&q=&min_price=&max_price=&in_stock=1&sort=`. Prices are in minor units, as the API
 * takes them. Parsing is lenient: a bad value is dropped rather than sent.
 */
import type { LocationQuery, LocationQueryRaw } from 'vue-router'

export const SORTS = ['newest', 'price_asc', 'price_desc', 'rating', 'best_selling'] as const
export type Sort = (typeof SORTS)[number]

export interface SearchFilters {
  category?: string
  q?: string
  min_price?: number
  max_price?: number
  in_stock?: boolean
  sort?: Sort
}

function first(v: LocationQuery[string] | undefined): string | undefined {
  const x = Array.isArray(v) ? v[0] : v
  return typeof x === 'string' && x.trim() !== '' ? x.trim() : undefined
}

function nonNegativeInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,15}$/.test(v)) return undefined
  return Number(v)
}

export function filtersFromQuery(query: LocationQuery): SearchFilters {
  const f: SearchFilters = {}
  const category = first(query.category)
  if (category) f.category = category
  const q = first(query.q)
  if (q) f.q = q.slice(0, 100)
  const min = nonNegativeInt(first(query.min_price))
  if (min !== undefined) f.min_price = min
  const max = nonNegativeInt(first(query.max_price))
  if (max !== undefined) f.max_price = max
  const inStock = first(query.in_stock)
  if (inStock === '1' || inStock === 'true') f.in_stock = true
  const sort = first(query.sort)
  if (sort && (SORTS as readonly string[]).includes(sort)) f.sort = sort as Sort
  return f
}

export function queryFromFilters(f: SearchFilters): LocationQueryRaw {
  const q: LocationQueryRaw = {}
  if (f.category) q.category = f.category
  if (f.q && f.q.trim()) q.q = f.q.trim()
  if (typeof f.min_price === 'number') q.min_price = String(f.min_price)
  if (typeof f.max_price === 'number') q.max_price = String(f.max_price)
  if (f.in_stock) q.in_stock = '1'
  if (f.sort && f.sort !== 'newest') q.sort = f.sort
  return q
}
