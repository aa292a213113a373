/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** ISO 4217 code the shop prices in (amounts are in its minor units); default KRW. */
  readonly VITE_CURRENCY?: string
}

interface ImportMeta {
  readonly env: ImportMetaEnv
}
