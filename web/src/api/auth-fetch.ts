/**
 * The rule "a 401 refreshes once, then asks to log in", as a `fetch` wrapper for openapi-fetch.
 *
 * - Every request carries `Authorization: Bearer <access token>` when there is one (a request
 *   that sets its own Authorization keeps it).
 * - A 401 from any endpoint but login and refresh triggers ONE refresh; concurrent 401s share
 *   the same in-flight refresh. The original request is retried once with the new token.
 * - When the token changed while the request was out (another request already refreshed),
 *   the retry uses the new token without refreshing again.
 * - When the refresh fails, `onSessionExpired` runs once for that refresh (clear the session,
 *   go to /login?next=…) and the caller gets the original 401.
 * - Login and refresh themselves are never retried, so a refused refresh cannot loop.
 *
 * Pure: no Vue, no Pinia, no globals; everything arrives through the options.
 */

export type FetchLike = (request: Request) => Promise<Response>

export interface AuthFetchOptions {
  /** The network (globalThis.fetch in the app, a fake in tests). */
  fetch: FetchLike
  /** The access token in memory now, or null when logged out. */
  getAccessToken: () => string | null
  /** Refreshes the session: the new access token, or null when the refresh was refused. */
  refresh: () => Promise<string | null>
  /** The refresh failed: forget the session and send the shopper to log in. */
  onSessionExpired: () => void
}

/** The endpoints a 401 from which must not trigger a refresh. */
const NO_REFRESH_PATHS = ['/api/v1/auth/login', '/api/v1/auth/refresh']

export function isAuthEndpoint(url: string): boolean {
  let path: string
  try {
    path = new URL(url, 'http://x').pathname
  } catch {
    path = url
  }
  path = path.replace(/\/+$/, '')
  return NO_REFRESH_PATHS.includes(path)
}

/**
 * Wraps an async function so that concurrent calls share one in-flight promise; the next call
 * after it settles starts a new one.
 */
export function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let inflight: Promise<T> | null = null
  return () => {
    if (!inflight) {
      inflight = fn().finally(() => {
        inflight = null
      })
    }
    return inflight
  }
}

function withBearer(request: Request, token: string | null, force: boolean): Request {
  if (!token) return request
  if (!force && request.headers.has('Authorization')) return request
  const headers = new Headers(request.headers)
  headers.set('Authorization', `Bearer ${token}`)
  return new Request(request, { headers })
}

export function createAuthFetch(options: AuthFetchOptions): FetchLike {
  const refreshOnce = singleFlight(async () => {
    let token: string | null = null
    try {
      token = await options.refresh()
    } catch {
      token = null
    }
    if (!token) options.onSessionExpired()
    return token
  })

  return async (request: Request): Promise<Response> => {
    const exempt = isAuthEndpoint(request.url)
    const sentToken = options.getAccessToken()
    // Keep an unread copy for the one retry (a sent body cannot be read twice).
    const spare = exempt ? null : request.clone()
    const response = await options.fetch(withBearer(request, sentToken, false))
    if (response.status !== 401 || exempt || !spare) return response

    let fresh = options.getAccessToken()
    if (!fresh || fresh === sentToken) fresh = await refreshOnce()
    if (!fresh) return response
    // The retry always carries the new token, even where the caller had set its own.
    return options.fetch(withBearer(spare, fresh, true))
  }
}
