import { shallowRef } from 'vue'

/** An error outside any view (a route chunk that failed to load, a global handler). */
export const appError = shallowRef<unknown>(null)
