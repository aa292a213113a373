// @vitest-environment node
import { describe, expect, it, vi } from 'vitest'
import { createAuthFetch, isAuthEndpoint, singleFlight } from '@/api/auth-fetch'

const BASE = 'http://shop.test'

/** A fake server: 401 unless the request carries the currently valid token. */
function fakeServer(valid: { token: string }) {
  const seen: Request[] = []
  const fetch = vi.fn(async (req: Request) => {
    seen.push(req)
    const auth = req.headers.get('Authorization')
    if (auth === `Bearer ${valid.token}`) {
      const body = req.method === 'GET' ? null : await req.text()
      return new Response(JSON.stringify({ ok: true, body }), { status: 200 })
    }
    return new Response(JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401 }), { status: 401 })
  })
  return { fetch, seen }
}

function setup(opts: { refreshTo: string | null; delayMs?: number }) {
  let token: string | null = 'old'
  const valid = { token: 'new' }
  const server = fakeServer(valid)
  const refresh = vi.fn(async () => {
    await new Promise((r) => setTimeout(r, opts.delayMs ?? 5))
    if (opts.refreshTo) token = opts.refreshTo
    else token = null
    return opts.refreshTo
  })
  const onSessionExpired = vi.fn()
  const authFetch = createAuthFetch({
    fetch: server.fetch,
    getAccessToken: () => token,
    refresh,
    onSessionExpired,
  })
  return { authFetch, server, refresh, onSessionExpired, getToken: () => token }
}

describe('the refresh-once rule', () => {
  it('adds the bearer token to every request', async () => {
    const { authFetch, server } = setup({ refreshTo: 'new' })
    await authFetch(new Request(`${BASE}/api/v1/cart`))
    expect(server.seen[0]?.headers.get('Authorization')).toBe('Bearer old')
  })

  it('refreshes once on a 401 and retries the request with the new token, body intact', async () => {
    const { authFetch, server, refresh, onSessionExpired } = setup({ refreshTo: 'new' })
    const res = await authFetch(
      new Request(`${BASE}/api/v1/cart/items`, { method: 'POST', body: JSON.stringify({ qty: 2 }) }),
    )
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true, body: '{"qty":2}' })
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(server.fetch).toHaveBeenCalledTimes(2)
    expect(server.seen[1]?.headers.get('Authorization')).toBe('Bearer new')
    expect(onSessionExpired).not.toHaveBeenCalled()
  })

  it('shares one in-flight refresh between concurrent 401s', async () => {
    const { authFetch, refresh } = setup({ refreshTo: 'new', delayMs: 20 })
    const results = await Promise.all(
      ['/api/v1/cart', '/api/v1/orders', '/api/v1/wallet', '/api/v1/users/me'].map((p) => authFetch(new Request(BASE + p))),
    )
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200])
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('does not refresh again when another request already did (the token changed meanwhile)', async () => {
    const { authFetch, refresh } = setup({ refreshTo: 'new' })
    await authFetch(new Request(`${BASE}/api/v1/cart`)) // refreshes: token is now "new"
    expect(refresh).toHaveBeenCalledTimes(1)
    // A request sent with the old token that comes back 401 after the refresh: retry, no refresh.
    const stale = setup({ refreshTo: 'new' })
    let token = 'old'
    const f = createAuthFetch({
      fetch: async (req) => {
        const auth = req.headers.get('Authorization')
        token = 'new' // another request refreshed while this one was out
        return new Response(null, { status: auth === 'Bearer new' ? 200 : 401 })
      },
      getAccessToken: () => token,
      refresh: stale.refresh,
      onSessionExpired: stale.onSessionExpired,
    })
    expect((await f(new Request(`${BASE}/api/v1/orders`))).status).toBe(200)
    expect(stale.refresh).not.toHaveBeenCalled()
  })

  it('logs out (once) when the refresh fails, and answers the original 401', async () => {
    const { authFetch, refresh, onSessionExpired, server } = setup({ refreshTo: null, delayMs: 10 })
    const results = await Promise.all([
      authFetch(new Request(`${BASE}/api/v1/cart`)),
      authFetch(new Request(`${BASE}/api/v1/orders`)),
    ])
    expect(results.map((r) => r.status)).toEqual([401, 401])
    expect(refresh).toHaveBeenCalledTimes(1)
    expect(onSessionExpired).toHaveBeenCalledTimes(1)
    expect(server.fetch).toHaveBeenCalledTimes(2) // no retries
  })

  it('a refresh that throws (network) counts as failed', async () => {
    const onSessionExpired = vi.fn()
    const f = createAuthFetch({
      fetch: async () => new Response(null, { status: 401 }),
      getAccessToken: () => 'old',
      refresh: async () => {
        throw new TypeError('offline')
      },
      onSessionExpired,
    })
    expect((await f(new Request(`${BASE}/api/v1/cart`))).status).toBe(401)
    expect(onSessionExpired).toHaveBeenCalledTimes(1)
  })

  it('retries at most once: a second 401 is returned as it is', async () => {
    const refresh = vi.fn(async () => 'new')
    const fetch = vi.fn(async () => new Response(null, { status: 401 }))
    const f = createAuthFetch({ fetch, getAccessToken: () => 'old', refresh, onSessionExpired: vi.fn() })
    expect((await f(new Request(`${BASE}/api/v1/cart`))).status).toBe(401)
    expect(fetch).toHaveBeenCalledTimes(2)
    expect(refresh).toHaveBeenCalledTimes(1)
  })

  it('never refreshes on a 401 from the refresh or login endpoints (no loop)', async () => {
    const { authFetch, refresh, onSessionExpired, server } = setup({ refreshTo: 'new' })
    const r1 = await authFetch(new Request(`${BASE}/api/v1/auth/refresh`, { method: 'POST', body: '{}' }))
    const r2 = await authFetch(new Request(`${BASE}/api/v1/auth/login`, { method: 'POST', body: '{}' }))
    expect([r1.status, r2.status]).toEqual([401, 401])
    expect(refresh).not.toHaveBeenCalled()
    expect(onSessionExpired).not.toHaveBeenCalled()
    expect(server.fetch).toHaveBeenCalledTimes(2)
  })

  it('leaves other statuses alone', async () => {
    const refresh = vi.fn(async () => 'new')
    const f = createAuthFetch({
      fetch: async () => new Response(null, { status: 403 }),
      getAccessToken: () => 'old',
      refresh,
      onSessionExpired: vi.fn(),
    })
    expect((await f(new Request(`${BASE}/api/v1/categories`, { method: 'POST', body: '{}' }))).status).toBe(403)
    expect(refresh).not.toHaveBeenCalled()
  })
})

describe('helpers', () => {
  it('knows the auth endpoints', () => {
    expect(isAuthEndpoint(`${BASE}/api/v1/auth/refresh`)).toBe(true)
    expect(isAuthEndpoint('/api/v1/auth/login')).toBe(true)
    expect(isAuthEndpoint(`${BASE}/api/v1/auth/logout`)).toBe(false)
    expect(isAuthEndpoint(`${BASE}/api/v1/cart`)).toBe(false)
  })

  it('singleFlight shares a promise while it is pending, then starts anew', async () => {
    let n = 0
    const f = singleFlight(async () => {
      await new Promise((r) => setTimeout(r, 5))
      return ++n
    })
    expect(await Promise.all([f(), f(), f()])).toEqual([1, 1, 1])
    expect(await f()).toBe(2)
  })
})
