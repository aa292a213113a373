import { networkProblem, toProblem } from './problem'
import type { Problem } from './types'

export type Result<D> =
  | { ok: true; data: D; response: Response }
  | { ok: false; problem: Problem; status: number; response?: Response }

/**
 * Awaits an openapi-fetch call and folds its three outcomes (data, problem+json, no answer at
 * all) into one result, so views never see a thrown network error.
 */
export async function call<D>(
  request: Promise<{ data?: D; error?: unknown; response: Response }>,
): Promise<Result<D>> {
  try {
    const r = await request
    if (r.response.ok) return { ok: true, data: r.data as D, response: r.response }
    return { ok: false, problem: toProblem(r.error, r.response), status: r.response.status, response: r.response }
  } catch {
    return { ok: false, problem: networkProblem(), status: 0 }
  }
}
