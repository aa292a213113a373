import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import HomeView from '@/views/HomeView.vue'
import { useSessionStore } from '@/stores/session'
import { i18n } from '@/i18n'
import { appError } from '@/lib/app-error'

declare module 'vue-router' {
  interface RouteMeta {
    /** A logged-in user only (else /login?next=…). */
    auth?: boolean
    /** An admin only. */
    admin?: boolean
    /** The i18n key of the document title. */
    title?: string
  }
}

// Every route but home is its own chunk: account and admin code never weighs on the first load.
const routes: RouteRecordRaw[] = [
  { path: '/', name: 'home', component: HomeView, meta: { title: 'home.title' } },
  { path: '/search', name: 'search', component: () => import('@/views/SearchView.vue'), meta: { title: 'search.title' } },
  { path: '/items/:id', name: 'item', component: () => import('@/views/ItemView.vue'), meta: { title: 'item.title' } },
  { path: '/cart', name: 'cart', component: () => import('@/views/CartView.vue'), meta: { auth: true, title: 'cart.title' } },
  { path: '/checkout', name: 'checkout', component: () => import('@/views/CheckoutView.vue'), meta: { auth: true, title: 'checkout.title' } },
  { path: '/payments/:id', name: 'payment', component: () => import('@/views/PaymentView.vue'), meta: { auth: true, title: 'payment.title' } },
  { path: '/orders', name: 'orders', component: () => import('@/views/OrdersView.vue'), meta: { auth: true, title: 'orders.title' } },
  { path: '/orders/:id', name: 'order', component: () => import('@/views/OrderView.vue'), meta: { auth: true, title: 'order.title' } },
  { path: '/login', name: 'login', component: () => import('@/views/LoginView.vue'), meta: { title: 'login.title' } },
  { path: '/signup', name: 'signup', component: () => import('@/views/SignupView.vue'), meta: { title: 'signup.title' } },
  { path: '/account', name: 'account', component: () => import('@/views/AccountView.vue'), meta: { auth: true, title: 'account.title' } },
  { path: '/account/reviews', name: 'my-reviews', component: () => import('@/views/MyReviewsView.vue'), meta: { auth: true, title: 'myReviews.title' } },
  { path: '/reviews/new', name: 'review-new', component: () => import('@/views/ReviewNewView.vue'), meta: { auth: true, title: 'reviewNew.title' } },
  { path: '/admin', name: 'admin', component: () => import('@/views/admin/AdminHome.vue'), meta: { auth: true, admin: true, title: 'admin.title' } },
  { path: '/admin/categories', name: 'admin-categories', component: () => import('@/views/admin/AdminCategories.vue'), meta: { auth: true, admin: true, title: 'adminCategories.title' } },
  { path: '/admin/items', name: 'admin-items', component: () => import('@/views/admin/AdminItems.vue'), meta: { auth: true, admin: true, title: 'adminItems.title' } },
  { path: '/admin/items/new', name: 'admin-item-new', component: () => import('@/views/admin/AdminItemEdit.vue'), meta: { auth: true, admin: true, title: 'adminItem.newTitle' } },
  { path: '/admin/items/:id', name: 'admin-item-edit', component: () => import('@/views/admin/AdminItemEdit.vue'), meta: { auth: true, admin: true, title: 'adminItem.editTitle' } },
  { path: '/admin/items/:id/stock', name: 'admin-stock', component: () => import('@/views/admin/AdminStock.vue'), meta: { auth: true, admin: true, title: 'adminStock.title' } },
  { path: '/admin/orders', name: 'admin-orders', component: () => import('@/views/admin/AdminOrders.vue'), meta: { auth: true, admin: true, title: 'adminOrders.title' } },
  { path: '/forbidden', name: 'forbidden', component: () => import('@/views/ForbiddenView.vue'), meta: { title: 'forbidden.title' } },
  { path: '/:pathMatch(.*)*', name: 'not-found', component: () => import('@/views/NotFoundView.vue'), meta: { title: 'notFound.title' } },
]

export const router = createRouter({
  history: createWebHistory(import.meta.env.BASE_URL),
  routes,
  scrollBehavior(to, from, saved) {
    if (saved) return saved
    if (to.path === from.path) return false
    return { top: 0 }
  },
})

router.beforeEach(async (to) => {
  if (!to.meta.auth) return true
  const session = useSessionStore()
  await session.restore()
  if (!session.loggedIn) return { path: '/login', query: { next: to.fullPath } }
  if (to.meta.admin && !session.isAdmin) return { path: '/forbidden', query: { from: to.fullPath } }
  return true
})

router.afterEach((to) => {
  const key = to.meta.title
  const page = key ? i18n.global.t(key) : ''
  document.title = page ? `${page} · Kommerce` : 'Kommerce'
})

// A lazy route whose chunk fails to load (offline, a new deployment) shows the fallback view.
router.onError((error) => {
  console.error(error)
  appError.value = error
})
