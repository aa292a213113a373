import { useI18n } from 'vue-i18n'
import { formatMoney } from '@/lib/money'
import { formatDateTime } from '@/lib/dates'

/** Money and dates in the current locale (reactive through vue-i18n's locale). */
export function useFormat() {
  const { locale } = useI18n()
  return {
    money: (minor: number | null | undefined) =>
      typeof minor === 'number' ? formatMoney(minor, locale.value) : '—',
    dateTime: (iso: string | null | undefined) => formatDateTime(iso, locale.value),
  }
}
