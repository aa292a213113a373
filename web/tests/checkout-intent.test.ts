import { describe, expect, it, vi } from 'vitest'
import {
  beginCheckout,
  outcomeOf,
  PENDING_CHECKOUT_KEY,
  readPending,
  submitCheckout,
  type CheckoutOutcome,
  type CheckoutRequest,
  type StorageLike,
} from '@/lib/checkout-intent'

/** sessionStorage as it survives a reload of the tab: the same map, read by fresh code. */
function memoryStorage(): StorageLike & { map: Map<string, string> } {
  const map = new Map<string, string>()
  return {
    map,
    getItem: (k) => map.get(k) ?? null,
    setItem: (k, v) => void map.set(k, String(v)),
    removeItem: (k) => void map.delete(k),
  }
}

const request: CheckoutRequest = {
  cart_line_ids: ['11111111-1111-1111-1111-111111111111'],
  address_id: '22222222-2222-2222-2222-222222222222',
  amount_minor: 24000,
  method: 'wallet',
}

describe('checkout idempotency key', () => {
  it('is stored with the whole request BEFORE anything is sent', async () => {
    const storage = memoryStorage()
    let storedAtSend: string | null = null
    const send = vi.fn(async (): Promise<CheckoutOutcome> => {
      storedAtSend = storage.getItem(PENDING_CHECKOUT_KEY)
      return { kind: 'unknown', problem: null }
    })
    const entry = beginCheckout(request, storage, () => 'key-1')
    await submitCheckout(entry, send, storage)
    expect(JSON.parse(storedAtSend as unknown as string)).toEqual({ key: 'key-1', ...request })
  })

  it('survives a reload: the same key and request are resent', async () => {
    const storage = memoryStorage()
    const first = vi.fn(async (): Promise<CheckoutOutcome> => {
      throw new TypeError('the tab was reloaded mid-flight')
    })
    const keys = ['key-A', 'key-B']
    const makeKey = () => keys.shift() as string
    await submitCheckout(beginCheckout(request, storage, makeKey), first, storage)

    // "Reload": new code reads the same sessionStorage.
    const pending = readPending(storage)
    expect(pending).toEqual({ key: 'key-A', ...request })
    const second = vi.fn(async (key: string, body: CheckoutRequest): Promise<CheckoutOutcome> => {
      expect(key).toBe('key-A')
      expect(body).toEqual(request)
      return { kind: 'accepted', paymentId: 'pay-1' }
    })
    const outcome = await submitCheckout(pending!, second, storage)
    expect(outcome).toEqual({ kind: 'accepted', paymentId: 'pay-1' })
    expect(second).toHaveBeenCalledTimes(1)
    expect(readPending(storage)).toBeNull() // cleared once the payment is known
  })

  it('a second press while one is pending reuses its key (double click)', () => {
    const storage = memoryStorage()
    let n = 0
    const makeKey = () => `key-${++n}`
    const a = beginCheckout(request, storage, makeKey)
    const b = beginCheckout({ ...request, amount_minor: 1 }, storage, makeKey)
    expect(b.key).toBe(a.key)
    expect(b.amount_minor).toBe(24000)
    expect(n).toBe(1)
  })

  it('a refused payment (4xx) clears the entry so the next press gets a new key', async () => {
    const storage = memoryStorage()
    const entry = beginCheckout(request, storage, () => 'key-1')
    const outcome = await submitCheckout(
      entry,
      async () => ({ kind: 'refused', status: 422, problem: { type: 'x', title: 'Unprocessable', status: 422 } }),
      storage,
    )
    expect(outcome.kind).toBe('refused')
    expect(readPending(storage)).toBeNull()
    expect(beginCheckout(request, storage, () => 'key-2').key).toBe('key-2')
  })

  it('a 5xx or no answer keeps the entry (the payment may exist)', async () => {
    const storage = memoryStorage()
    const entry = beginCheckout(request, storage, () => 'key-1')
    await submitCheckout(entry, async () => outcomeOf(503, undefined, { type: 'x', title: 'busy', status: 503 }), storage)
    expect(readPending(storage)?.key).toBe('key-1')
  })

  it('maps HTTP answers to outcomes', () => {
    const p = { type: 'x', title: 't', status: 400 }
    expect(outcomeOf(201, 'pay-1', p)).toEqual({ kind: 'accepted', paymentId: 'pay-1' })
    expect(outcomeOf(402, undefined, p).kind).toBe('refused')
    expect(outcomeOf(404, undefined, p).kind).toBe('refused')
    expect(outcomeOf(422, undefined, p).kind).toBe('refused')
    expect(outcomeOf(401, undefined, p).kind).toBe('unknown')
    expect(outcomeOf(500, undefined, p).kind).toBe('unknown')
    expect(outcomeOf(0, undefined, p).kind).toBe('unknown')
  })

  it('drops a damaged entry', () => {
    const storage = memoryStorage()
    storage.setItem(PENDING_CHECKOUT_KEY, '{"key":')
    expect(readPending(storage)).toBeNull()
    expect(storage.map.size).toBe(0)
  })

  it('uses crypto.randomUUID by default', () => {
    const storage = memoryStorage()
    const entry = beginCheckout(request, storage)
    expect(entry.key).toMatch(/^[0-9a-f-]{36}$/)
  })
})
