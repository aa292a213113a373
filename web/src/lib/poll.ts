/**
 * Polling with backoff, pure (no Vue): used to follow the checkout saga (a payment until it is
 * `completed`, `refunded` or `cancelled`) and a cancellation until its refund.
 *
 * The first fetch is at once; then 250 ms, growing ×2 up to 2 s between fetches; after
 * `timeoutMs` (60 s) it stops and reports a timeout ("still processing"). A failed fetch
 * (network, 5xx) is retried on the same schedule; a `PollFatal` (e.g. a 404) stops it.
 */

export interface PollTimers {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
  now: () => number
}

export const realTimers: PollTimers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
}

export class PollFatal extends Error {
  constructor(
    message: string,
    readonly detail?: unknown,
  ) {
    super(message)
    this.name = 'PollFatal'
  }
}

export interface PollOptions<T> {
  fetch: () => Promise<T>
  isDone: (value: T) => boolean
  onValue?: (value: T) => void
  onDone?: (value: T) => void
  onTimeout?: () => void
  onError?: (error: unknown, fatal: boolean) => void
  initialDelayMs?: number
  maxDelayMs?: number
  factor?: number
  timeoutMs?: number
  timers?: PollTimers
}

export type PollState = 'idle' | 'polling' | 'done' | 'timeout' | 'failed' | 'stopped'

export interface Poller {
  start(): void
  stop(): void
  readonly state: PollState
}

/** The wait before attempt `n` (n ≥ 1): 250, 500, 1000, 2000, 2000, … */
export function backoffDelay(n: number, initial = 250, max = 2000, factor = 2): number {
  return Math.min(max, initial * factor ** Math.max(0, n - 1))
}

export function createPoller<T>(opts: PollOptions<T>): Poller {
  const timers = opts.timers ?? realTimers
  const initial = opts.initialDelayMs ?? 250
  const max = opts.maxDelayMs ?? 2000
  const factor = opts.factor ?? 2
  const timeout = opts.timeoutMs ?? 60_000

  let state: PollState = 'idle'
  let handle: unknown = null
  let startedAt = 0
  let attempt = 0
  let generation = 0

  function schedule(gen: number) {
    attempt += 1
    const delay = backoffDelay(attempt, initial, max, factor)
    if (timers.now() + delay - startedAt > timeout) {
      state = 'timeout'
      opts.onTimeout?.()
      return
    }
    handle = timers.setTimeout(() => {
      handle = null
      void tick(gen)
    }, delay)
  }

  async function tick(gen: number) {
    if (gen !== generation || state !== 'polling') return
    try {
      const value = await opts.fetch()
      if (gen !== generation || state !== 'polling') return
      opts.onValue?.(value)
      if (opts.isDone(value)) {
        state = 'done'
        opts.onDone?.(value)
        return
      }
    } catch (error) {
      if (gen !== generation || state !== 'polling') return
      const fatal = error instanceof PollFatal
      opts.onError?.(error, fatal)
      if (fatal) {
        state = 'failed'
        return
      }
    }
    schedule(gen)
  }

  return {
    start() {
      if (handle !== null) timers.clearTimeout(handle)
      handle = null
      generation += 1
      attempt = 0
      startedAt = timers.now()
      state = 'polling'
      void tick(generation)
    },
    stop() {
      generation += 1
      if (handle !== null) timers.clearTimeout(handle)
      handle = null
      if (state === 'polling') state = 'stopped'
    },
    get state() {
      return state
    },
  }
}

/** A payment's saga has an outcome: the order exists, or the money went back. */
export function paymentSettled(p: { status: string }): boolean {
  return p.status === 'completed' || p.status === 'refunded' || p.status === 'cancelled'
}

/** A cancelled order's payment has been refunded. */
export function refundSettled(p: { status: string }): boolean {
  return p.status === 'refunded' || p.status === 'cancelled'
}
