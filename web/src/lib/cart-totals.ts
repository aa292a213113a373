/**
 * Cart arithmetic, pure. Only lines still on sale (with a known price) count and go to
 * checkout; a line whose item left the sale stays in the cart, shown as "no longer on sale".
 */

export interface TotalsLine {
  id: string
  qty: number
  on_sale: boolean
  unit_price_minor?: number | null
}

export function isPurchasable(line: TotalsLine): boolean {
  return line.on_sale && typeof line.unit_price_minor === 'number'
}

/** A line's total in minor units, or null when its price is unknown. */
export function lineTotal(line: TotalsLine): number | null {
  return typeof line.unit_price_minor === 'number' ? line.unit_price_minor * line.qty : null
}

export interface CartTotals {
  /** The on-sale lines' total, in minor units: what checkout charges. */
  subtotal_minor: number
  /** Units in the on-sale lines. */
  units: number
  /** The ids of the on-sale lines: what checkout names in `cart_line_ids`. */
  line_ids: string[]
  /** Lines left out because their item is no longer on sale. */
  excluded: number
}

export function cartTotals(lines: readonly TotalsLine[]): CartTotals {
  let subtotal = 0
  let units = 0
  let excluded = 0
  const ids: string[] = []
  for (const line of lines) {
    if (!isPurchasable(line)) {
      excluded += 1
      continue
    }
    subtotal += lineTotal(line) ?? 0
    units += line.qty
    ids.push(line.id)
  }
  return { subtotal_minor: subtotal, units, line_ids: ids, excluded }
}
