/**
 * What one refresh-token rotation costs in the issuer's store as a session ages. A session keeps every
 * refresh token it had (presenting a superseded one is reuse), one more per refresh: a session refreshed
 * every 5 minutes for 30 days holds 8,640. The rotation's time, on the embedded SQLite store, per band of
 * the session's refreshes so far.
 *
 *   npx tsx --conditions=keygate-source bench/refresh-age.ts [--refreshes 10000]
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { openIssuerStore } from '../services/issuer/store/issuer-store.js'

/** The bands' upper ends, as shares of the refreshes asked for. */
const BANDS = [0.01, 0.1, 0.5, 1]

/** Microseconds per rotation in each band of one session's refreshes. */
export async function refreshAge(
  refreshes: number,
): Promise<Array<{ from: number; to: number; us: number }>> {
  const dir = mkdtempSync(join(tmpdir(), 'kg-refresh-age-'))
  const store = await openIssuerStore(join(dir, 'issuer.db'))
  try {
    const t0 = Date.now()
    const far = t0 + 365 * 86_400_000
    const user = {
      id: randomUUID(),
      email: 'aging@example.com',
      passwordHash: '$argon2id$unused',
      roles: ['user'],
      createdAt: t0,
      updatedAt: t0,
      disabledAt: null,
    }
    await store.createUser(user)
    const sessionId = randomUUID()
    const session = { id: sessionId, userId: user.id, clientId: 'web', csrfHash: 'unused', createdAt: t0 }
    await store.createSession({ ...session, idleExpiresAt: far, absoluteExpiresAt: far }, 'token-0')
    const bands = []
    let n = 0
    for (const share of BANDS) {
      const to = Math.max(n + 1, Math.round(refreshes * share))
      const from = n
      const start = performance.now()
      for (; n < to; n++) {
        const rotated = await store.rotateRefreshToken({
          sessionId,
          presentedHash: `token-${n}`,
          newTokenHash: `token-${n + 1}`,
          now: t0 + n,
          idleExpiresAt: far,
        })
        if (!rotated) throw new Error(`bench: rotation ${n} was refused`)
      }
      bands.push({ from, to, us: ((performance.now() - start) * 1000) / (to - from) })
    }
    return bands
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { refreshes: { type: 'string', default: '10000' } } })
  for (const band of await refreshAge(Number(values.refreshes))) {
    console.log(`refreshes ${band.from}–${band.to} of the session: ${band.us.toFixed(0)} µs per rotation`)
  }
}
