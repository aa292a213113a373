import { createI18n } from 'vue-i18n'
import en, { type Messages } from './en'
import ko from './ko'

export const LOCALES = ['ko', 'en'] as const
export type Locale = (typeof LOCALES)[number]

/** Only the chosen locale is kept in localStorage (never a token). */
export const LOCALE_STORAGE_KEY = 'kommerce.locale'

export function isLocale(x: unknown): x is Locale {
  return typeof x === 'string' && (LOCALES as readonly string[]).includes(x)
}

/** The stored choice, else the first of the browser's languages we speak, else English. */
export function pickLocale(stored: string | null, languages: readonly string[]): Locale {
  if (isLocale(stored)) return stored
  for (const lang of languages) {
    const base = lang.toLowerCase().split('-')[0]
    if (isLocale(base)) return base
  }
  return 'en'
}

function initialLocale(): Locale {
  let stored: string | null = null
  try {
    stored = globalThis.localStorage?.getItem(LOCALE_STORAGE_KEY) ?? null
  } catch {
    stored = null
  }
  const langs =
    typeof navigator !== 'undefined'
      ? navigator.languages?.length
        ? navigator.languages
        : [navigator.language]
      : []
  return pickLocale(stored, langs)
}

export const i18n = createI18n<[Messages], Locale, false>({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { en, ko },
  missingWarn: false,
  fallbackWarn: false,
})

export function currentLocale(): Locale {
  return i18n.global.locale.value
}

/** Switches the language, remembers it and keeps `<html lang>` in step. */
export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale
  try {
    globalThis.localStorage?.setItem(LOCALE_STORAGE_KEY, locale)
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  syncHtmlLang()
}

export function syncHtmlLang(): void {
  if (typeof document !== 'undefined') document.documentElement.lang = i18n.global.locale.value
}
