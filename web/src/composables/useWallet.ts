import { ref } from 'vue'
import { api } from '@/api/client'
import { call } from '@/api/call'
import type { Problem, Wallet } from '@/api/types'

/** The caller's wallet (balance and entries) and why it could not be read, loaded on demand. */
export function useWallet() {
  const wallet = ref<Wallet | null>(null)
  const walletProblem = ref<Problem | null>(null)
  async function loadWallet() {
    const r = await call(api.GET('/api/v1/wallet'))
    if (r.ok) {
      wallet.value = r.data
      walletProblem.value = null
    } else walletProblem.value = r.problem
  }
  return { wallet, walletProblem, loadWallet }
}
