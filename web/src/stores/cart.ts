import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api } from '@/api/client'
import { networkProblem, toProblem } from '@/api/problem'
import type { Cart, Problem } from '@/api/types'
import { cartTotals } from '@/lib/cart-totals'

export const useCartStore = defineStore('cart', () => {
  const cart = ref<Cart | null>(null)
  const loading = ref(false)
  const problem = ref<Problem | null>(null)

  const lines = computed(() => cart.value?.lines ?? [])
  const totals = computed(() => cartTotals(lines.value))
  /** Units in the whole cart, for the header badge. */
  const count = computed(() => lines.value.reduce((n, l) => n + l.qty, 0))

  async function load(): Promise<void> {
    loading.value = true
    try {
      const { data, error, response } = await api.GET('/api/v1/cart')
      if (data) {
        cart.value = data
        problem.value = null
      } else {
        problem.value = toProblem(error, response)
      }
    } catch {
      problem.value = networkProblem()
    } finally {
      loading.value = false
    }
  }

  function reset() {
    cart.value = null
    problem.value = null
  }

  return { cart, loading, problem, lines, totals, count, load, reset }
})
