/**
 * The session: the access token and the user, in memory only. The refresh token is an
 * HttpOnly cookie (Path=/api/v1/auth) the page never sees; `Kommerce-Session: cookie` asks the
 * user service for that flow on login, refresh and logout.
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, COOKIE_SESSION } from '@/api/client'
import { singleFlight } from '@/api/auth-fetch'
import { networkProblem, retryAfterSeconds, toProblem } from '@/api/problem'
import type { AuthTokens, Problem, User } from '@/api/types'

export type LoginResult =
  | { ok: true }
  | { ok: false; problem: Problem; status: number; retryAfter: number | null }

/** Serialises refreshes across tabs too: two tabs presenting the same one-use cookie would end the session. */
async function acrossTabs<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined
  if (locks?.request) return locks.request('kommerce-auth-refresh', fn) as Promise<T>
  return fn()
}

export const useSessionStore = defineStore('session', () => {
  const accessToken = ref<string | null>(null)
  const user = ref<User | null>(null)
  /** True once the start-up silent refresh has settled. */
  const restored = ref(false)

  const loggedIn = computed(() => accessToken.value !== null && user.value !== null)
  const isAdmin = computed(() => user.value?.role === 'admin')

  /** Moves on every login, refresh and logout: an answer to an older request must not undo it. */
  let generation = 0

  function accept(tokens: AuthTokens) {
    generation += 1
    accessToken.value = tokens.access_token
    user.value = tokens.user
  }

  function clear() {
    generation += 1
    accessToken.value = null
    user.value = null
  }

  async function login(email: string, password: string): Promise<LoginResult> {
    try {
      const { data, error, response } = await api.POST('/api/v1/auth/login', {
        params: { header: COOKIE_SESSION },
        body: { email, password },
        credentials: 'same-origin',
      })
      if (data) {
        accept(data)
        restored.value = true
        return { ok: true }
      }
      return {
        ok: false,
        problem: toProblem(error, response),
        status: response.status,
        retryAfter: retryAfterSeconds(response),
      }
    } catch {
      return { ok: false, problem: networkProblem(), status: 0, retryAfter: null }
    }
  }

  /** One refresh through the cookie; the new access token, or null (and logged out) when refused. */
  const refresh = singleFlight(() =>
    acrossTabs(async () => {
      const before = generation
      try {
        const { data, response } = await api.POST('/api/v1/auth/refresh', {
          params: { header: COOKIE_SESSION },
          body: {},
          credentials: 'same-origin',
        })
        if (data) {
          accept(data)
          return data.access_token
        }
        // A login that finished while this refresh was out (the start-up refresh of a page
        // whose visitor logs in at once) stands: the refusal was about the session before it.
        if (response.status === 401 && generation === before) clear()
        return generation === before ? null : accessToken.value
      } catch {
        return null
      }
    }),
  )

  let restoring: Promise<void> | null = null
  /** On start-up: one silent refresh restores the session after a reload (a 401 = logged out). */
  function restore(): Promise<void> {
    if (!restoring) {
      restoring = (async () => {
        if (!accessToken.value) await refresh()
        restored.value = true
      })()
    }
    return restoring
  }

  /** True while logging out: a refused refresh then needs no "log in again" detour. */
  const loggingOut = ref(false)

  async function logout(): Promise<void> {
    const token = accessToken.value
    loggingOut.value = true
    try {
      if (token) {
        await api.POST('/api/v1/auth/logout', {
          params: { header: COOKIE_SESSION },
          headers: { Authorization: `Bearer ${token}` },
          credentials: 'same-origin',
        })
      }
    } catch {
      // Offline: forget the session here all the same.
    } finally {
      clear()
      loggingOut.value = false
    }
  }

  function setUser(next: User) {
    user.value = next
  }

  return { accessToken, user, restored, loggingOut, loggedIn, isAdmin, login, refresh, restore, logout, clear, setUser }
})
