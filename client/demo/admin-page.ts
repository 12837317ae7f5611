/**
 * For admins (the gateway lets only the `admin` role through `/api/admin`): signing keys with a rotate
 * button, users, and a user's sessions with a revoke button.
 */
import type { Demo } from './api.js'
import { button, byId, el, table } from './dom.js'

interface Key {
  kid: string
  state: string
  created_at: string
  activated_at: string | null
  retired_at: string | null
}
interface User {
  id: string
  email: string
  roles: string[]
  created_at: string
}
interface Session {
  id: string
  client_id: string
  created_at: string
  last_used_at: string | null
  revoked_at: string | null
  revoked_reason: string | null
}

export function setUpAdminPage(demo: Demo): () => Promise<void> {
  const showKeys = (keys: Key[]) =>
    byId('keys-list').replaceChildren(
      table(
        ['kid', 'State', 'Created', 'Activated', 'Retired'],
        keys.map((k) => [
          el('code', {}, k.kid),
          k.state,
          k.created_at,
          k.activated_at ?? '–',
          k.retired_at ?? '–',
        ]),
        'No keys.',
      ),
    )
  const loadKeys = async () => showKeys((await demo.call<{ keys: Key[] }>('/api/admin/keys')).keys)

  const loadSessions = async (user: User) => {
    const { sessions } = await demo.call<{ sessions: Session[] }>(
      `/api/admin/users/${encodeURIComponent(user.id)}/sessions`,
    )
    const title = byId('sessions-title')
    title.hidden = false
    title.textContent = `Sessions of ${user.email}`
    const revoke = (session: Session) =>
      demo.attempt(async () => {
        await demo.call(`/api/admin/sessions/${encodeURIComponent(session.id)}/revoke`, { method: 'POST' })
        await loadSessions(user)
        demo.say(`The session of ${user.email} started ${session.created_at} was revoked.`)
      })
    byId('sessions-list').replaceChildren(
      table(
        ['Session', 'Started', 'Last used', 'State', ''],
        sessions.map((s) => [
          el('code', {}, s.id),
          s.created_at,
          s.last_used_at ?? '–',
          s.revoked_at ? `revoked (${s.revoked_reason ?? '?'})` : 'active',
          s.revoked_at ? '' : button('Revoke', () => void revoke(s)),
        ]),
        'No sessions.',
      ),
    )
  }

  const loadUsers = async () => {
    const { users } = await demo.call<{ users: User[] }>('/api/admin/users')
    byId('users-list').replaceChildren(
      table(
        ['E-mail', 'Roles', 'Created', ''],
        users.map((u) => [
          u.email,
          u.roles.join(', '),
          u.created_at,
          button('Sessions', () => void demo.attempt(() => loadSessions(u))),
        ]),
        'No users.',
      ),
    )
  }

  byId('keys-rotate').addEventListener('click', () =>
    demo.attempt(async () => {
      showKeys((await demo.call<{ keys: Key[] }>('/api/admin/keys/rotate', { method: 'POST' })).keys)
      demo.say('Keys rotated: new tokens are signed with the next key.')
    }),
  )
  return async () => {
    await Promise.all([loadKeys(), loadUsers()])
  }
}
