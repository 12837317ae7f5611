/** `PUT /api/files/:name`, `GET /api/files` and one-time download links (`POST /api/files/:name/link`). */
import type { Demo } from './api.js'
import { button, byId, el, table } from './dom.js'

interface FileInfo {
  name: string
  size: number
  contentType: string
  updatedAt: string
}

export function setUpFilesPage(demo: Demo): () => Promise<void> {
  const link = async (name: string) => {
    const { url, expires_in } = await demo.call<{ url: string; expires_in: number }>(
      `/api/files/${encodeURIComponent(name)}/link`,
      { method: 'POST' },
    )
    // The link is the credential: no token goes with it, and it works once.
    byId('file-link').replaceChildren(
      `One-time link for ${name} (valid ${expires_in} s, one download): `,
      el('a', { href: url, id: 'file-link-url', rel: 'noreferrer' }, url),
    )
  }
  const load = async () => {
    const { files } = await demo.call<{ files: FileInfo[] }>('/api/files')
    byId('files-list').replaceChildren(
      table(
        ['Name', 'Size', 'Type', 'Updated', ''],
        files.map((f) => [
          f.name,
          `${f.size} B`,
          f.contentType,
          f.updatedAt,
          button('One-time link', () => void demo.attempt(() => link(f.name))),
        ]),
        'No files yet.',
      ),
    )
  }
  const form = byId<HTMLFormElement>('file-form')
  const picker = form.elements.namedItem('file') as HTMLInputElement
  const name = form.elements.namedItem('name') as HTMLInputElement
  picker.addEventListener('change', () => {
    const picked = picker.files?.[0]
    if (picked && name.value === '') name.value = picked.name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200)
  })
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const file = picker.files?.[0]
    if (!file) return
    void demo.attempt(async () => {
      await demo.call(`/api/files/${encodeURIComponent(name.value)}`, {
        method: 'PUT',
        headers: { 'content-type': file.type || 'application/octet-stream' },
        body: file,
      })
      const uploaded = name.value
      form.reset()
      await load()
      demo.say(`Uploaded ${uploaded}.`)
    })
  })
  return load
}
