/** `GET /api/profile/me` and `PUT /api/profile/me`: who the gateway says you are, and your display name. */
import { json, type Demo } from './api.js'
import { byId, fields } from './dom.js'

export interface Me {
  sub: string
  roles: string[]
  scopes: string[]
  profile: { displayName: string | null; updatedAt: string | null }
}

export function setUpProfilePage(demo: Demo, onChange: (me: Me) => void): () => Promise<void> {
  const show = (me: Me) => {
    byId('profile-sub').textContent = me.sub
    byId('profile-roles').textContent = me.roles.join(', ') || '–'
    byId('profile-display-name').textContent = me.profile.displayName ?? '(not set)'
    onChange(me)
  }
  const form = byId<HTMLFormElement>('profile-form')
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const { displayName = '' } = fields(form)
    void demo.attempt(async () => {
      show(await demo.call<Me>('/api/profile/me', json('PUT', { displayName })))
      form.reset()
      demo.say('Display name saved.')
    })
  })
  return async () => show(await demo.call<Me>('/api/profile/me'))
}
