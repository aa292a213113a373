import type { CategoryNode } from '@/api/types'

export interface FlatCategory {
  id: string
  name: string
  depth: number
  /** Names from the root down, e.g. `Clothes › Shirts`. */
  path: string
  parentId: string | null
}

/** The tree, depth first, for selects and tables. */
export function flattenCategories(nodes: readonly CategoryNode[], depth = 0, parent: FlatCategory | null = null): FlatCategory[] {
  const out: FlatCategory[] = []
  for (const n of nodes) {
    const flat: FlatCategory = {
      id: n.id,
      name: n.name,
      depth,
      path: parent ? `${parent.path} › ${n.name}` : n.name,
      parentId: parent?.id ?? null,
    }
    out.push(flat, ...flattenCategories(n.children, depth + 1, flat))
  }
  return out
}

/** The ids of a category and all its descendants. */
export function descendantIds(nodes: readonly CategoryNode[], id: string): Set<string> {
  const out = new Set<string>()
  const walk = (list: readonly CategoryNode[], inside: boolean) => {
    for (const n of list) {
      const here = inside || n.id === id
      if (here) out.add(n.id)
      walk(n.children, here)
    }
  }
  walk(nodes, false)
  return out
}
