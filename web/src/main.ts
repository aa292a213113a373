import { createApp, watch } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { router } from './router'
import { i18n, syncHtmlLang } from './i18n'
import { configureAuth } from './api/client'
import { useSessionStore } from './stores/session'
import { useCartStore } from './stores/cart'
import { appError } from './lib/app-error'
import './style.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
app.use(router)

const session = useSessionStore(pinia)
const cart = useCartStore(pinia)

configureAuth({
  getAccessToken: () => session.accessToken,
  refresh: () => session.refresh(),
  onSessionExpired: () => {
    session.clear()
    cart.reset()
    if (session.loggingOut) return
    const here = router.currentRoute.value
    if (here.name !== 'login') void router.push({ path: '/login', query: { next: here.fullPath } })
  },
})

app.config.errorHandler = (err) => {
  console.error(err)
  appError.value = err
}

syncHtmlLang()
watch(i18n.global.locale, syncHtmlLang)

// Restore the session after a reload (one silent refresh); a session loads the cart for the badge.
void session.restore()
watch(
  () => session.loggedIn,
  (now, before) => {
    if (now && !before) void cart.load()
    if (!now) cart.reset()
  },
)

app.mount('#app')
