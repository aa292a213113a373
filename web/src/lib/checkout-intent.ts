/**
 * The checkout's Idempotency-Key must survive a double click AND a reload.
 *
 * When the shopper first presses Pay, a key is made (crypto.randomUUID()) and the whole request
 * `{key, cart_line_ids, address_id, amount_minor, method}` is written to sessionStorage under one
 * entry BEFORE it is sent. While that entry exists, Pay (or a reload of /checkout) resends the
 * same request with the same key, and the server answers the same payment. The entry is
 * cleared once the payment is known: accepted (201), or refused (4xx other than 401). A network
 * failure or a 5xx leaves it, since the payment may exist.
 */
import type { PaymentMethod, Problem } from '@/api/types'

export const PENDING_CHECKOUT_KEY = 'kommerce.checkout.pending'

export interface CheckoutRequest {
  cart_line_ids: string[]
  address_id: string
  amount_minor: number
  method: PaymentMethod
}

export interface PendingCheckout extends CheckoutRequest {
  key: string
}

export type StorageLike = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>

export function readPending(storage: StorageLike): PendingCheckout | null {
  let raw: string | null
  try {
    raw = storage.getItem(PENDING_CHECKOUT_KEY)
  } catch {
    return null
  }
  if (!raw) return null
  try {
    const v = JSON.parse(raw) as Partial<PendingCheckout>
    if (
      typeof v.key === 'string' &&
      v.key.length > 0 &&
      Array.isArray(v.cart_line_ids) &&
      v.cart_line_ids.every((x) => typeof x === 'string') &&
      typeof v.address_id === 'string' &&
      typeof v.amount_minor === 'number' &&
      (v.method === 'wallet' || v.method === 'card')
    ) {
      return {
        key: v.key,
        cart_line_ids: v.cart_line_ids,
        address_id: v.address_id,
        amount_minor: v.amount_minor,
        method: v.method,
      }
    }
  } catch {
    // A damaged entry is no entry.
  }
  storage.removeItem(PENDING_CHECKOUT_KEY)
  return null
}

export function clearPending(storage: StorageLike): void {
  storage.removeItem(PENDING_CHECKOUT_KEY)
}

function newUuid(): string {
  return globalThis.crypto.randomUUID()
}

/**
 * Pay was pressed: the pending entry when there is one (its key, its request: the payment it
 * may have made must be confirmed first), else a new key for `request`, stored before sending.
 */
export function beginCheckout(
  request: CheckoutRequest,
  storage: StorageLike,
  makeKey: () => string = newUuid,
): PendingCheckout {
  const pending = readPending(storage)
  if (pending) return pending
  const entry: PendingCheckout = {
    key: makeKey(),
    cart_line_ids: [...request.cart_line_ids],
    address_id: request.address_id,
    amount_minor: request.amount_minor,
    method: request.method,
  }
  storage.setItem(PENDING_CHECKOUT_KEY, JSON.stringify(entry))
  return entry
}

export type CheckoutOutcome =
  | { kind: 'accepted'; paymentId: string }
  | { kind: 'refused'; status: number; problem: Problem }
  | { kind: 'unknown'; problem: Problem | null }

/** The network call: POST /api/v1/payments with `Idempotency-Key: key`. */
export type SendPayment = (key: string, body: CheckoutRequest) => Promise<CheckoutOutcome>

/** Sends (or resends) the pending request; clears the entry once the payment is known. */
export async function submitCheckout(
  pending: PendingCheckout,
  send: SendPayment,
  storage: StorageLike,
): Promise<CheckoutOutcome> {
  const { key, ...body } = pending
  let outcome: CheckoutOutcome
  try {
    outcome = await send(key, body)
  } catch {
    outcome = { kind: 'unknown', problem: null }
  }
  if (outcome.kind !== 'unknown') clearPending(storage)
  return outcome
}

/** How an HTTP answer to POST /api/v1/payments settles the pending entry. */
export function outcomeOf(status: number, paymentId: string | undefined, problem: Problem): CheckoutOutcome {
  if ((status === 200 || status === 201) && paymentId) return { kind: 'accepted', paymentId }
  if (status >= 400 && status < 500 && status !== 401 && status !== 408 && status !== 429) {
    return { kind: 'refused', status, problem }
  }
  return { kind: 'unknown', problem }
}
