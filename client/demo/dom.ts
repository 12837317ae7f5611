/**
 * The demo's DOM helpers. Everything a user or the server wrote is set as text (textContent), never as HTML:
 * the page runs under a CSP with Trusted Types, so an HTML sink would throw anyway.
 */

/** The element with this id; the page's markup is fixed, so a missing one is a bug. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id)
  if (!element) throw new Error(`demo: no element #${id}`)
  return element as T
}

/** An element with attributes and children (strings become text nodes). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value)
  element.append(...children)
  return element
}

/** A button that runs `action` when clicked. */
export function button(label: string, action: () => void, attributes: Record<string, string> = {}) {
  const element = el('button', { type: 'button', ...attributes }, label)
  element.addEventListener('click', action)
  return element
}

/** A table, or a note when there are no rows. */
export function table(headers: string[], rows: Array<Array<Node | string>>, empty: string): HTMLElement {
  if (rows.length === 0) return el('p', {}, empty)
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))))),
  )
}

/** A form's fields as strings. */
export function fields(form: HTMLFormElement): Record<string, string> {
  const values: Record<string, string> = {}
  for (const [name, value] of new FormData(form)) if (typeof value === 'string') values[name] = value
  return values
}
