// The storefront's browser journeys: Debian's chromium (never a downloaded one) driven by
// playwright-core against a running platform, as shoppers and admins use it.
//
//   KOMMERCE_URL=http://127.0.0.1:8080 KOMMERCE_ADMIN=email:password \
//   KOMMERCE_DEMO=email:password KOMMERCE_SCREENSHOTS=target/screenshots node web/e2e/journeys.mjs
//
// Run by the Rust test tests/tests/platform/storefront.rs, which starts the platform as
// separate processes, seeds it, and afterwards checks the books against what the journeys
// did: their last line is `RESULT {json}`. Every page visited is checked for page errors,
// server errors (5xx) and Content-Security-Policy violations; every page of the tour is
// checked with axe-core (no serious or critical violation) and photographed at desktop and
// phone width.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

const require = createRequire(import.meta.url)
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')
const BASE = must('KOMMERCE_URL').replace(/\/$/, '')
const [ADMIN_EMAIL, ADMIN_PASSWORD] = split(must('KOMMERCE_ADMIN'))
const [DEMO_EMAIL, DEMO_PASSWORD] = split(must('KOMMERCE_DEMO'))
const SHOTS = process.env.KOMMERCE_SCREENSHOTS ?? join(process.cwd(), 'target/screenshots')
const PASSWORD = 'correct horse battery'
const RUN = Math.random().toString(36).slice(2, 8)
const DESKTOP = { width: 1280, height: 860 }
const PHONE = { width: 390, height: 844 }
const WAIT = 60_000

function must(name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}
function split(pair) {
  const i = pair.indexOf(':')
  return [pair.slice(0, i), pair.slice(i + 1)]
}
function check(ok, message) {
  if (!ok) throw new Error(message)
}
const log = (...a) => console.log('[journeys]', ...a)

// ------------------------------------------------------------------ the API, for set-up only

async function api(method, path, { token, body, headers = {} } = {}) {
  const r = await fetch(BASE + path, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  const data = text ? JSON.parse(text) : null
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return data
}
const login = async (email, password) =>
  (await api('POST', '/api/v1/auth/login', { body: { email, password } })).access_token

/** A shopper made through the API: account, default address, money. */
async function shopperByApi(name, balance) {
  const email = `${name}-${RUN}@e2e.test`
  await api('POST', '/api/v1/users', {
    body: { email, password: PASSWORD, name: `E2E ${name}`, phone: '+82 10 5555 0100' },
  })
  const token = await login(email, PASSWORD)
  await api('POST', '/api/v1/users/me/addresses', {
    token,
    body: { recipient: `E2E ${name}`, phone: '+82 10 5555 0100', line1: '1 Test-ro', city: 'Seoul',
      postal_code: '04524', country: 'KR' },
  })
  await api('POST', '/api/v1/wallet/top-up', { token, body: { amount_minor: balance } })
  return { email, token }
}

// --------------------------------------------------------------------------- the browser

const browser = await chromium.launch({
  executablePath: process.env.KOMMERCE_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const problems = []

/** A fresh browser profile (its own cookies) at `viewport`, watched for errors. */
async function open(viewport = DESKTOP, locale = 'en-US') {
  const context = await browser.newContext({ viewport, locale, isMobile: viewport === PHONE })
  context.setDefaultTimeout(20_000)
  const page = await context.newPage()
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`))
  page.on('console', (m) => {
    const text = m.text()
    // A refused request is logged by the browser itself; the answers are checked below.
    if (m.type() === 'error' && !text.startsWith('Failed to load resource')) {
      problems.push(`console error on ${page.url()}: ${text}`)
    }
  })
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`)
  })
  return { context, page }
}

const byId = (page, id) => page.getByTestId(id)
async function visible(page, id, timeout) {
  await byId(page, id).first().waitFor({ state: 'visible', timeout })
}
async function attribute(page, id, name, want, timeout = WAIT) {
  await page.waitForFunction(
    ([id, name, want]) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute(name) === want,
    [id, name, want],
    { timeout },
  )
}

async function logIn(page, email, password, next = '/') {
  await page.goto(`${BASE}/login?next=${encodeURIComponent(next)}`)
  await byId(page, 'login-email').fill(email)
  await byId(page, 'login-password').fill(password)
  await byId(page, 'login-submit').click()
  try {
    await page.waitForURL((u) => !u.pathname.startsWith('/login'))
  } catch (e) {
    const shown = await byId(page, 'login-error').allTextContents().catch(() => [])
    throw new Error(`still at ${page.url()} after logging in as ${email} (${shown.join(' ') || 'no error shown'}): ${e.message}`)
  }
}

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(page, name) {
  await page.evaluate(AXE)
  const found = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] })
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`)
  })
  for (const v of found) problems.push(`axe on ${name}: ${v}`)
}

/** Not blank: a heading, no error fallback. */
async function rendered(page, name) {
  await page.locator('main h1').first().waitFor({ state: 'visible' })
  check((await byId(page, 'error-fallback').count()) === 0, `${name} shows the error fallback`)
}

// ------------------------------------------------------------------------------ journeys

/** Signup → search → product → cart → top-up → checkout → order → cancel → refund. */
async function buyerJourney() {
  const { context, page } = await open()
  const email = `buyer-${RUN}@e2e.test`
  await page.goto(`${BASE}/signup`)
  await byId(page, 'signup-email').fill(email)
  await byId(page, 'signup-password').fill(PASSWORD)
  await byId(page, 'signup-name').fill('E2E Buyer')
  await byId(page, 'signup-phone').fill('+82 10 5555 0101')
  await byId(page, 'signup-submit').click()
  await visible(page, 'logout')

  await byId(page, 'nav-search').click()
  await byId(page, 'search-q').fill('Sencha')
  await byId(page, 'search-submit').click()
  await page.waitForURL(/[?&]q=Sencha/)
  const card = page.locator('[data-testid="product-card"]:has([data-testid="stock-state"][data-state="in"])').first()
  await card.waitFor()
  // The URL holds the search: back from the product returns to the same results.
  await card.getByTestId('product-name').click()
  await page.waitForURL(/\/items\//)
  await page.goBack()
  await page.waitForURL(/[?&]q=Sencha/)
  await card.getByTestId('product-name').click()
  await visible(page, 'item-name')
  await rendered(page, 'product')
  await byId(page, 'add-to-cart').click()
  await visible(page, 'added-to-cart')

  await byId(page, 'nav-cart').click()
  await visible(page, 'cart-line')
  await byId(page, 'checkout').click()
  await page.waitForURL(/\/checkout$/)
  const topUp = 200_000
  await byId(page, 'top-up-amount').fill(String(topUp))
  await byId(page, 'top-up').click()
  await visible(page, 'top-up-done')
  // A shopper without addresses gets the form at once.
  await byId(page, 'co-address-new-recipient').or(byId(page, 'address-add')).first().waitFor()
  if (await byId(page, 'address-add').isVisible()) await byId(page, 'address-add').click()
  const f = (field, value) => byId(page, `co-address-new-${field}`).fill(value)
  await f('recipient', 'E2E Buyer')
  await f('phone', '+82 10 5555 0101')
  await f('line1', '123 Sejong-daero')
  await f('city', 'Seoul')
  await f('postal-code', '04524')
  await f('country', 'KR')
  await byId(page, 'co-address-new-save').click()
  await visible(page, 'address-option')
  await byId(page, 'pay').click()
  await page.waitForURL(/\/payments\//)
  await attribute(page, 'payment-status', 'data-status', 'completed')
  await byId(page, 'order-link').click()
  await page.waitForURL(/\/orders\//)
  await visible(page, 'timeline-step')
  await attribute(page, 'order-status', 'data-status', 'created')
  await byId(page, 'cancel-order').click()
  await visible(page, 'order-refund', WAIT)
  await visible(page, 'order-refund-amount', WAIT)
  await page.goto(`${BASE}/orders`)
  await visible(page, 'order-row')
  await context.close()
  log('buyer: signed up, searched, bought, cancelled, refund shown')
  return { buyer: email, top_up: topUp }
}

/** The demo shopper of `kommerce up --demo` buys something: address and money are ready. */
async function demoJourney() {
  const { context, page } = await open()
  await logIn(page, DEMO_EMAIL, DEMO_PASSWORD)
  await page.goto(`${BASE}/search?q=Classic&in_stock=true`)
  await page.locator('[data-testid="product-card"]').first().getByTestId('product-name').click()
  await byId(page, 'add-to-cart').click()
  await visible(page, 'added-to-cart')
  await page.goto(`${BASE}/checkout`)
  await visible(page, 'address-option')
  await visible(page, 'wallet-balance')
  await byId(page, 'pay').click()
  await page.waitForURL(/\/payments\//)
  await attribute(page, 'payment-status', 'data-status', 'completed')
  await byId(page, 'order-link').click()
  await page.waitForURL(/\/orders\//)
  const order = new URL(page.url()).pathname.split('/').pop()
  await context.close()
  log('demo shopper: bought', order)
  return { demo_order: order }
}

/** Pay pressed twice, the answer lost, the page reloaded: the same key again, one payment. */
async function reloadJourney() {
  const s = await shopperByApi('reloader', 300_000)
  const items = await api('GET', '/api/v1/items?q=Organic&in_stock=true&limit=1')
  await api('POST', '/api/v1/cart/items', { token: s.token, body: { item_id: items.items[0].id, qty: 1 } })
  const { context, page } = await open()
  await logIn(page, s.email, PASSWORD, '/checkout')
  await visible(page, 'address-option')
  const keys = []
  let lost = false
  await page.route('**/api/v1/payments', async (route) => {
    const req = route.request()
    if (req.method() !== 'POST') return route.continue()
    keys.push(req.headers()['idempotency-key'])
    if (!lost) {
      // The server takes the payment; the browser never hears the answer.
      lost = true
      const answer = await route.fetch()
      check(answer.status() === 201, `first payment answered ${answer.status()}`)
      return route.abort('connectionreset')
    }
    return route.continue()
  })
  await byId(page, 'pay').dblclick()
  await visible(page, 'checkout-error')
  await visible(page, 'checkout-pending')
  await page.reload()
  await page.waitForURL(/\/payments\//, { timeout: WAIT })
  await attribute(page, 'payment-status', 'data-status', 'completed')
  check(keys.length === 2, `expected the first send and one resend, saw ${keys.length}`)
  check(keys[0] && keys[0] === keys[1], `the resend used another key: ${keys}`)
  await context.close()
  log('reloader: answer lost, page reloaded, the same key resent, one payment')
  return { reloader: s.email }
}

/** Stock gone between the cart and the payment: the refund and its reason are shown. */
async function stockGoneJourney(admin) {
  const tree = await api('GET', '/api/v1/categories')
  const leaf = tree[0].children[0]?.id ?? tree[0].id
  const name = `E2E last teapot ${RUN}`
  const item = await api('POST', '/api/v1/items', {
    token: admin,
    body: { name, price_minor: 12_000, category_id: leaf, stock: 1 },
  })
  const s = await shopperByApi('late', 100_000)
  const { context, page } = await open()
  await logIn(page, s.email, PASSWORD, `/items/${item.id}`)
  await byId(page, 'add-to-cart').click()
  await visible(page, 'added-to-cart')
  await page.goto(`${BASE}/checkout`)
  await visible(page, 'address-option')
  // Someone else takes the last unit.
  await api('POST', `/api/v1/items/${item.id}/stock`, {
    token: admin,
    body: { delta: -1, reason: 'sold in the shop downstairs' },
  })
  await byId(page, 'pay').click()
  await page.waitForURL(/\/payments\//)
  // No order could be made: the saga cancels the payment and refunds it.
  await attribute(page, 'payment-status', 'data-status', 'cancelled')
  const reason = (await byId(page, 'refund-reason').innerText()).trim()
  check(reason.length > 0, 'no refund reason shown')
  await visible(page, 'refund-amount')
  await context.close()
  log('late shopper: refunded, reason shown:', reason)
  return { late: s.email, late_reason: reason }
}

/** The admin adds an item with a picture; shoppers find it. Ships the demo order. */
async function adminJourney(demoOrder) {
  // A picture to upload: one of the seeded ones.
  const seeded = (await api('GET', '/api/v1/items?q=Sencha&limit=1')).items[0]
  const image = await fetch(`${BASE}/api/v1/images/${seeded.image_ids[0]}`)
  check(image.ok, `GET a seeded image: ${image.status}`)
  const picture = join(tmpdir(), `kommerce-e2e-${RUN}.png`)
  writeFileSync(picture, Buffer.from(await image.arrayBuffer()))

  const { context, page } = await open()
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD, '/admin/items/new')
  const name = `E2E Admin Kettle ${RUN}`
  await byId(page, 'admin-item-name').fill(name)
  await byId(page, 'admin-item-description').fill('Added by the browser journey.')
  await byId(page, 'admin-item-price').fill('45000')
  // Options are indented by depth ("— Kettles"): pick the one naming Kettles.
  const kettles = await page.$eval('[data-testid="admin-item-category"]', (s) =>
    [...s.options].find((o) => o.text.endsWith('Kettles'))?.value)
  check(kettles, 'no Kettles category to choose')
  await byId(page, 'admin-item-category').selectOption(kettles)
  await byId(page, 'admin-item-stock').fill('7')
  await byId(page, 'admin-item-images').setInputFiles(picture)
  await byId(page, 'admin-item-images-item').or(byId(page, 'admin-item-images-error')).first().waitFor()
  const refused = byId(page, 'admin-item-images-error')
  check(!(await refused.isVisible()), `upload refused: ${await refused.innerText().catch(() => '')}`)
  await byId(page, 'admin-item-save').click()
  await page.waitForURL(/\/admin\/items\/[0-9a-f-]{36}$/)
  const id = new URL(page.url()).pathname.split('/').pop()
  await byId(page, 'admin-item-stock-link').click()
  await visible(page, 'admin-ledger-row')

  await page.goto(`${BASE}/search?q=${encodeURIComponent(name)}`)
  const found = page.locator('[data-testid="product-card"]', { hasText: name })
  await found.first().waitFor()
  check((await found.first().locator('img').count()) === 1, 'the new item shows its picture')

  await page.goto(`${BASE}/admin/orders`)
  await byId(page, 'admin-ship-order-id').fill(demoOrder)
  await byId(page, 'admin-ship-submit').click()
  await attribute(page, 'admin-ship-result', 'data-status', 'shipped')
  await context.close()
  log('admin: created', id, 'with a picture, found it in search, shipped', demoOrder)
  return { admin_item: name, admin_item_id: id }
}

/** Korean by the browser's language, English by the switcher. */
async function languageJourney() {
  const { context, page } = await open(DESKTOP, 'ko-KR')
  await page.goto(`${BASE}/`)
  await page.waitForFunction(() => document.documentElement.lang === 'ko')
  const heading = await page.locator('main h1').first().innerText()
  check(/[\uac00-\ud7a3]/.test(heading), `the Korean home page's heading is not Korean: ${heading}`)
  check(/₩/.test(await page.locator('main').innerText()), 'prices in won')
  await byId(page, 'locale-switcher').selectOption('en')
  await page.waitForFunction(() => document.documentElement.lang === 'en')
  await context.close()
  log('languages: ko from the browser, en from the switcher')
}

/** Every page: rendered, accessible, photographed at desktop and phone width. */
async function tour(ids) {
  mkdirSync(SHOTS, { recursive: true })
  const pages = [
    ['home', '/', null],
    ['search', '/search?q=tea&sort=price_asc', null],
    ['product', `/items/${ids.reviewed}`, null],
    ['login', '/login', null],
    ['signup', '/signup', null],
    ['not-found', '/no/such/page', null],
    ['cart', '/cart', 'demo'],
    ['checkout', '/checkout', 'demo'],
    ['orders', '/orders', 'demo'],
    ['order', `/orders/${ids.demo_order}`, 'demo'],
    ['account', '/account', 'demo'],
    ['my-reviews', '/account/reviews', 'demo'],
    ['review-new', `/reviews/new?item=${ids.reviewed}`, 'demo'],
    ['admin-items', '/admin/items', 'admin'],
    ['admin-item', `/admin/items/${ids.admin_item_id}`, 'admin'],
    ['admin-stock', `/admin/items/${ids.admin_item_id}/stock`, 'admin'],
    ['admin-categories', '/admin/categories', 'admin'],
    ['admin-orders', '/admin/orders', 'admin'],
  ]
  const who = { demo: [DEMO_EMAIL, DEMO_PASSWORD], admin: [ADMIN_EMAIL, ADMIN_PASSWORD] }
  for (const [width, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const sessions = {}
    for (const [name, path, as] of pages) {
      const key = as ?? 'anonymous'
      if (!sessions[key]) {
        sessions[key] = await open(viewport)
        if (as) await logIn(sessions[key].page, ...who[as])
      }
      const { page } = sessions[key]
      await page.goto(BASE + path)
      await rendered(page, name)
      await page.waitForLoadState('networkidle')
      if (width === 'desktop') await accessible(page, name)
      await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`) })
    }
    for (const s of Object.values(sessions)) await s.context.close()
  }
  log(`tour: ${pages.length} pages, axe-core on each, screenshots in ${SHOTS}`)
}

// --------------------------------------------------------------------------------- main

let result = {}
try {
  const admin = await login(ADMIN_EMAIL, ADMIN_PASSWORD)
  const reviewed = (await api('GET', '/api/v1/items?sort=rating&limit=1')).items[0].id
  Object.assign(result, await buyerJourney())
  Object.assign(result, await demoJourney())
  Object.assign(result, await reloadJourney())
  Object.assign(result, await stockGoneJourney(admin))
  Object.assign(result, await adminJourney(result.demo_order))
  await languageJourney()
  await tour({ ...result, reviewed })
} catch (e) {
  problems.push(`journey failed: ${e.stack ?? e}`)
} finally {
  await browser.close()
}
if (problems.length) {
  console.error(problems.join('\n'))
  process.exit(1)
}
console.log(`RESULT ${JSON.stringify(result)}`)
