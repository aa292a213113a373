import { onBeforeUnmount, ref, shallowRef } from 'vue'
import { createPoller, type PollOptions, type PollState } from '@/lib/poll'

/** A poller bound to a component: reactive state and value, stopped on unmount. */
export function usePoll<T>(options: Omit<PollOptions<T>, 'onValue' | 'onTimeout' | 'onError'> & {
  onError?: PollOptions<T>['onError']
}) {
  const value = shallowRef<T | null>(null)
  const state = ref<PollState>('idle')
  const lastError = shallowRef<unknown>(null)
  const poller = createPoller<T>({
    ...options,
    onValue: (v) => {
      value.value = v
      lastError.value = null
    },
    onDone: (v) => {
      state.value = 'done'
      options.onDone?.(v)
    },
    onTimeout: () => {
      state.value = 'timeout'
    },
    onError: (e, fatal) => {
      lastError.value = e
      if (fatal) state.value = 'failed'
      options.onError?.(e, fatal)
    },
  })
  function start() {
    state.value = 'polling'
    poller.start()
  }
  function stop() {
    poller.stop()
    if (state.value === 'polling') state.value = 'stopped'
  }
  onBeforeUnmount(() => poller.stop())
  return { value, state, lastError, start, stop }
}
