/**
 * The one API client: openapi-fetch over the generated `paths`, same origin (`/api/v1/*`),
 * every call through the refresh-once wrapper (./auth-fetch.ts). The session store plugs its
 * token, its refresh and the "log in again" redirect in at start-up (`configureAuth`).
 */
import createClient from 'openapi-fetch'
import type { paths } from './schema'
import { createAuthFetch, type AuthFetchOptions } from './auth-fetch'

type Hooks = Omit<AuthFetchOptions, 'fetch'>

const hooks: Hooks = {
  getAccessToken: () => null,
  refresh: async () => null,
  onSessionExpired: () => {},
}

/** Wires the session in (called once from main.ts). */
export function configureAuth(next: Partial<Hooks>): void {
  Object.assign(hooks, next)
}

const authFetch = createAuthFetch({
  fetch: (request) => globalThis.fetch(request),
  getAccessToken: () => hooks.getAccessToken(),
  refresh: () => hooks.refresh(),
  onSessionExpired: () => hooks.onSessionExpired(),
})

export const api = createClient<paths>({
  baseUrl: '',
  credentials: 'same-origin',
  fetch: authFetch,
})

/** Headers of the browser session flow: the refresh token lives in an HttpOnly cookie. */
export const COOKIE_SESSION = { 'Kommerce-Session': 'cookie' } as const

/** An image's URL (`variant` thumb or original); same origin, no token needed. */
export function imageUrl(id: string, variant: 'thumb' | 'original' = 'original'): string {
  const base = `/api/v1/images/${encodeURIComponent(id)}`
  return variant === 'thumb' ? `${base}?variant=thumb` : base
}
