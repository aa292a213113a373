import { api } from './client'
import { call, type Result } from './call'
import type { Image } from './types'

/** POST /api/v1/images: one multipart part named `file`. */
export function uploadImage(file: File): Promise<Result<Image>> {
  const form = new FormData()
  form.append('file', file, file.name)
  return call(
    api.POST('/api/v1/images', {
      // The typed body names the part; the FormData is what is sent.
      body: { file: file.name },
      bodySerializer: () => form,
    }),
  )
}
