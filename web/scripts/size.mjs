#!/usr/bin/env node
// The home page's initial JavaScript, gzipped: the entry chunk of dist/.vite/manifest.json and
// every chunk it imports statically (transitively). Lazy routes (dynamicImports) are not
// counted. Exits 1 above the budget (150 kB, 1 kB = 1000 bytes).
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'

const BUDGET = 150 * 1000
const dist = new URL('../dist/', import.meta.url).pathname
let manifest
try {
  manifest = JSON.parse(readFileSync(join(dist, '.vite/manifest.json'), 'utf8'))
} catch {
  console.error('size: dist/.vite/manifest.json not found; run `npm run build` first.')
  process.exit(2)
}

const entries = Object.entries(manifest).filter(([, chunk]) => chunk.isEntry)
if (entries.length === 0) {
  console.error('size: no entry chunk in the manifest.')
  process.exit(2)
}

const seen = new Set()
const rows = []
function visit(key) {
  if (seen.has(key)) return
  seen.add(key)
  const chunk = manifest[key]
  if (!chunk) return
  const bytes = readFileSync(join(dist, chunk.file))
  rows.push({ file: chunk.file, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length })
  for (const dep of chunk.imports ?? []) visit(dep)
}
for (const [key] of entries) visit(key)

const css = new Set(entries.flatMap(([, c]) => c.css ?? []))
let cssGzip = 0
for (const file of css) cssGzip += gzipSync(readFileSync(join(dist, file)), { level: 9 }).length

const total = rows.reduce((n, r) => n + r.gzip, 0)
const kb = (n) => `${(n / 1000).toFixed(1)} kB`
for (const r of rows) console.log(`  ${r.file}  ${kb(r.raw)} raw, ${kb(r.gzip)} gzip`)
console.log(`initial JS (entry + static imports), gzipped: ${kb(total)} of ${kb(BUDGET)} budget`)
console.log(`initial CSS, gzipped: ${kb(cssGzip)} (not counted)`)
if (total > BUDGET) {
  console.error(`size: over budget by ${kb(total - BUDGET)}`)
  process.exit(1)
}
