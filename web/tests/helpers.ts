import { createPinia, setActivePinia } from 'pinia'
import { createMemoryHistory, createRouter } from 'vue-router'
import { defineComponent, h } from 'vue'
import { i18n } from '@/i18n'

const Stub = defineComponent({ render: () => h('div', 'stub') })

/** The plugins a view needs: a fresh Pinia, the app's i18n (English), a memory router. */
export async function plugins(path = '/') {
  const pinia = createPinia()
  setActivePinia(pinia)
  i18n.global.locale.value = 'en'
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', component: Stub },
      { path: '/login', component: Stub },
      { path: '/signup', component: Stub },
      { path: '/:rest(.*)*', component: Stub },
    ],
  })
  await router.push(path)
  await router.isReady()
  return { pinia, router, list: [pinia, i18n, router] as const }
}

export function problemResponse(status: number, problem: object) {
  return new Response(JSON.stringify(problem), {
    status,
    headers: { 'Content-Type': 'application/problem+json' },
  })
}
