import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import SignupView from '@/views/SignupView.vue'
import LoginView from '@/views/LoginView.vue'
import FormProblem from '@/components/FormProblem.vue'
import { i18n } from '@/i18n'
import { plugins, problemResponse } from './helpers'

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('a form showing problem+json errors', () => {
  it('puts each field error next to the field it names', async () => {
    const fetch = vi.fn(async (_req: Request) =>
      problemResponse(422, {
        type: 'about:blank',
        title: 'Unprocessable Entity',
        status: 422,
        detail: 'A field is not acceptable.',
        errors: [
          { field: 'email', message: 'is not an e-mail address' },
          { field: 'phone', message: 'needs 7 to 15 digits' },
        ],
      }),
    )
    vi.stubGlobal('fetch', fetch)
    const { list } = await plugins('/signup')
    const w = mount(SignupView, { global: { plugins: [...list] } })

    await w.get('[data-testid="signup-email"]').setValue('nope')
    await w.get('[data-testid="signup-password"]').setValue('long enough password')
    await w.get('[data-testid="signup-name"]').setValue('Ada')
    await w.get('[data-testid="signup-phone"]').setValue('12')
    await w.get('form').trigger('submit')
    await flushPromises()

    expect(fetch).toHaveBeenCalledTimes(1)
    const sent = fetch.mock.calls[0]![0]
    expect(new URL(sent.url).pathname).toBe('/api/v1/users')

    const emailError = w.get('#signup-email-error')
    expect(emailError.text()).toBe('is not an e-mail address')
    expect(w.get('#signup-email').attributes('aria-invalid')).toBe('true')
    expect(w.get('#signup-email').attributes('aria-describedby')).toContain('signup-email-error')
    expect(w.get('#signup-phone-error').text()).toBe('needs 7 to 15 digits')
    // Fields without an error stay clean.
    expect(w.find('#signup-name-error').exists()).toBe(false)
    // Every error found its field: no visible top-of-form banner repeating them.
    expect(w.find('[data-testid="signup-error"]').exists()).toBe(false)
  })

  it('shows the detail at the top when no field is named', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => problemResponse(401, { type: 'about:blank', title: 'Unauthorized', status: 401 })),
    )
    const { list } = await plugins('/login')
    const w = mount(LoginView, { global: { plugins: [...list] } })
    await w.get('[data-testid="login-email"]').setValue('ada@example.com')
    await w.get('[data-testid="login-password"]').setValue('wrong password')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid="login-error"]').text()).toContain('The email or password is not right.')
  })

  it('lists an error naming a field the form does not have at the top', () => {
    const w = mount(FormProblem, {
      props: {
        problem: {
          type: 'about:blank',
          title: 'Unprocessable Entity',
          status: 422,
          detail: 'A field is not acceptable.',
          errors: [
            { field: 'email', message: 'taken' },
            { field: 'lines[2].qty', message: 'at most 99' },
          ],
        },
        fields: ['email'],
      },
      global: { plugins: [i18n] },
    })
    expect(w.text()).toContain('A field is not acceptable.')
    expect(w.text()).toContain('lines[2].qty')
    expect(w.text()).toContain('at most 99')
    expect(w.text()).not.toContain('taken')
  })
})

/** The user service's answer to a login or refresh: `accessToken` for Ada. */
function tokensResponse(accessToken: string) {
  return new Response(
    JSON.stringify({
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 900,
      refresh_expires_in: 2592000,
      user: { id: 'u1', email: 'ada@example.com', name: 'Ada', phone: '+821012345678', role: 'customer', created_at: '2026-01-01T00:00:00Z' },
    }),
    { status: 200, headers: { 'Content-Type': 'application/json' } },
  )
}

describe('the session', () => {
  it('logs in with Kommerce-Session: cookie and keeps the token out of web storage', async () => {
    const seen: { path: string; session: string | null; credentials: string; body: unknown }[] = []
    const fetch = vi.fn(async (req: Request) => {
      seen.push({
        path: new URL(req.url).pathname,
        session: req.headers.get('Kommerce-Session'),
        credentials: req.credentials,
        body: await req.json(),
      })
      return tokensResponse('jwt-access')
    })
    vi.stubGlobal('fetch', fetch)
    localStorage.clear()
    sessionStorage.clear()
    const { list, router } = await plugins('/login?next=/cart')
    const w = mount(LoginView, { global: { plugins: [...list] } })
    await w.get('[data-testid="login-email"]').setValue('ada@example.com')
    await w.get('[data-testid="login-password"]').setValue('correct horse battery')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(seen).toEqual([
      {
        path: '/api/v1/auth/login',
        session: 'cookie',
        credentials: 'same-origin',
        body: { email: 'ada@example.com', password: 'correct horse battery' },
      },
    ])
    expect(router.currentRoute.value.fullPath).toBe('/cart')
    const { useSessionStore } = await import('@/stores/session')
    expect(useSessionStore().accessToken).toBe('jwt-access')
    const stored = [...Object.values({ ...localStorage }), ...Object.values({ ...sessionStorage })].join(' ')
    expect(stored).not.toContain('jwt-access')
  })

  it('restores the session with one cookie refresh, and a 401 just means logged out', async () => {
    const { useSessionStore } = await import('@/stores/session')
    const seen: { path: string; session: string | null; body: unknown }[] = []
    const fetch = vi.fn(async (req: Request) => {
      seen.push({ path: new URL(req.url).pathname, session: req.headers.get('Kommerce-Session'), body: await req.json() })
      return problemResponse(401, { type: 'about:blank', title: 'Unauthorized', status: 401 })
    })
    vi.stubGlobal('fetch', fetch)
    await plugins('/')
    const session = useSessionStore()
    await Promise.all([session.restore(), session.restore()])
    expect(seen).toEqual([{ path: '/api/v1/auth/refresh', session: 'cookie', body: {} }])
    expect(session.loggedIn).toBe(false)
    expect(session.restored).toBe(true)
  })

  it('a login that lands while the start-up refresh is out is not undone by its 401', async () => {
    const { useSessionStore } = await import('@/stores/session')
    let answerRefresh: (r: Response) => void = () => {}
    const fetch = vi.fn(async (req: Request) => {
      if (new URL(req.url).pathname === '/api/v1/auth/refresh') {
        return new Promise<Response>((resolve) => {
          answerRefresh = resolve
        })
      }
      return tokensResponse('jwt-after-login')
    })
    vi.stubGlobal('fetch', fetch)
    await plugins('/')
    const session = useSessionStore()
    const restoring = session.restore() // the page starts: a silent refresh goes out
    await flushPromises()
    expect((await session.login('ada@example.com', 'correct horse battery')).ok).toBe(true)
    answerRefresh(problemResponse(401, { type: 'about:blank', title: 'Unauthorized', status: 401 }))
    await restoring
    expect(session.accessToken).toBe('jwt-after-login')
    expect(session.loggedIn).toBe(true)
  })
})
