import type { Problem } from './types'

/**
 * Every error answer is RFC 9457 problem+json. `toProblem` turns whatever came back (a parsed
 * problem, a non-JSON body, a network failure) into one, so forms have one thing to show.
 */
export function toProblem(error: unknown, response?: Response): Problem {
  if (isProblem(error)) return error
  const status = response?.status ?? 0
  if (response) {
    return {
      type: 'about:blank',
      title: response.statusText || `HTTP ${status}`,
      status: status >= 400 && status <= 599 ? status : 500,
      detail: typeof error === 'string' && error.length < 300 ? error : undefined,
    }
  }
  return { type: 'about:blank', title: 'network', status: 0, detail: undefined }
}

export function isProblem(x: unknown): x is Problem {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as Problem).status === 'number' &&
    typeof (x as Problem).title === 'string'
  )
}

/** A problem for a request that never got an answer (offline, server down). */
export function networkProblem(): Problem {
  return { type: 'about:blank', title: 'network', status: 0 }
}

/**
 * Whether a field error belongs to a form field: `field` is the JSON path the server names
 * (`email`, `lines[2].qty`, `image_ids[0]`); a form field `image_ids` owns its elements too.
 */
export function fieldMatches(errorField: string, formField: string): boolean {
  return (
    errorField === formField ||
    errorField.startsWith(formField + '[') ||
    errorField.startsWith(formField + '.')
  )
}

/** The messages of the errors naming `field`. */
export function messagesFor(problem: Problem | null | undefined, field: string): string[] {
  if (!problem?.errors) return []
  return problem.errors.filter((e) => fieldMatches(e.field, field)).map((e) => e.message)
}

/** Errors naming no field the form shows: they are listed at the top of the form. */
export function unmatchedErrors(problem: Problem | null | undefined, fields: readonly string[]) {
  if (!problem?.errors) return []
  return problem.errors.filter((e) => !fields.some((f) => fieldMatches(e.field, f)))
}

/** Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or null. */
export function retryAfterSeconds(response: Response | undefined): number | null {
  const v = response?.headers.get('Retry-After')
  if (!v) return null
  if (/^\d+$/.test(v.trim())) return Number(v.trim())
  const at = Date.parse(v)
  return Number.isNaN(at) ? null : Math.max(0, Math.round((at - Date.now()) / 1000))
}
