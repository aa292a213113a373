import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { backoffDelay, createPoller, paymentSettled, PollFatal } from '@/lib/poll'

type P = { status: string; order_id?: string | null }

/** A fake GET /api/v1/payments/{id}: answers the given statuses in turn (the last one repeats). */
function fakeFetch(statuses: (string | Error)[]) {
  let i = 0
  const fn = vi.fn(async (): Promise<P> => {
    const s = statuses[Math.min(i, statuses.length - 1)] as string | Error
    i += 1
    if (s instanceof Error) throw s
    return { status: s, order_id: s === 'completed' ? 'order-1' : null }
  })
  return fn
}

async function flush() {
  // Let the awaited fetch and its continuation run.
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('saga-status polling', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('backs off 250 ms, growing to 2 s', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n))).toEqual([250, 500, 1000, 2000, 2000, 2000])
  })

  it('polls until the payment is completed, on the backoff schedule', async () => {
    const fetch = fakeFetch(['pending_order', 'pending_order', 'pending_order', 'completed'])
    const onDone = vi.fn()
    const onValue = vi.fn()
    const poller = createPoller<P>({ fetch, isDone: paymentSettled, onDone, onValue })
    poller.start()
    await flush()
    expect(fetch).toHaveBeenCalledTimes(1) // at once
    await vi.advanceTimersByTimeAsync(249)
    expect(fetch).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1) // +250
    expect(fetch).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(500) // +500
    expect(fetch).toHaveBeenCalledTimes(3)
    await vi.advanceTimersByTimeAsync(1000) // +1000
    expect(fetch).toHaveBeenCalledTimes(4)
    expect(onDone).toHaveBeenCalledWith({ status: 'completed', order_id: 'order-1' })
    expect(poller.state).toBe('done')
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fetch).toHaveBeenCalledTimes(4) // stopped
    expect(onValue).toHaveBeenCalledTimes(4)
  })

  it('stops on refunded and on cancelled too', async () => {
    for (const end of ['refunded', 'cancelled']) {
      const fetch = fakeFetch(['pending_order', end])
      const onDone = vi.fn()
      createPoller<P>({ fetch, isDone: paymentSettled, onDone }).start()
      await vi.advanceTimersByTimeAsync(300)
      expect(onDone).toHaveBeenCalledWith(expect.objectContaining({ status: end }))
    }
  })

  it('gives up after ~60 s with a timeout ("still processing")', async () => {
    const fetch = fakeFetch(['pending_order'])
    const onTimeout = vi.fn()
    const poller = createPoller<P>({ fetch, isDone: paymentSettled, onTimeout })
    poller.start()
    await vi.advanceTimersByTimeAsync(59_000)
    expect(onTimeout).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(2_000)
    expect(onTimeout).toHaveBeenCalledTimes(1)
    expect(poller.state).toBe('timeout')
    const calls = fetch.mock.calls.length
    // 1 + 250 + 500 + 1000 then every 2 s within 60 s: about 32 fetches, never more
    expect(calls).toBeGreaterThan(25)
    expect(calls).toBeLessThan(40)
    await vi.advanceTimersByTimeAsync(30_000)
    expect(fetch.mock.calls.length).toBe(calls)
  })

  it('can be restarted after a timeout (the manual refresh button)', async () => {
    const fetch = fakeFetch(['pending_order'])
    const poller = createPoller<P>({ fetch, isDone: paymentSettled, timeoutMs: 1000 })
    poller.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(poller.state).toBe('timeout')
    const before = fetch.mock.calls.length
    poller.start()
    await flush()
    expect(fetch.mock.calls.length).toBe(before + 1)
    expect(poller.state).toBe('polling')
  })

  it('keeps polling through a transient failure and stops on a fatal one', async () => {
    const fetch = fakeFetch([new Error('503'), 'completed'])
    const onError = vi.fn()
    const onDone = vi.fn()
    createPoller<P>({ fetch, isDone: paymentSettled, onError, onDone }).start()
    await vi.advanceTimersByTimeAsync(250)
    expect(onError).toHaveBeenCalledWith(expect.any(Error), false)
    expect(onDone).toHaveBeenCalled()

    const fatal = fakeFetch([new PollFatal('404')])
    const onError2 = vi.fn()
    const p = createPoller<P>({ fetch: fatal, isDone: paymentSettled, onError: onError2 })
    p.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fatal).toHaveBeenCalledTimes(1)
    expect(onError2).toHaveBeenCalledWith(expect.any(PollFatal), true)
    expect(p.state).toBe('failed')
  })

  it('stop() cancels the next fetch', async () => {
    const fetch = fakeFetch(['pending_order'])
    const p = createPoller<P>({ fetch, isDone: paymentSettled })
    p.start()
    await flush()
    p.stop()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(fetch).toHaveBeenCalledTimes(1)
    expect(p.state).toBe('stopped')
  })
})
