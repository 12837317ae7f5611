/**
 * Files tests: an instance built on a stand-in issuer and gateway, with a clock the test moves and its
 * logs captured; `upload()` and `link()` for the common steps.
 */
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildFiles } from '../../../services/files/app.js'
import { loadFilesConfig } from '../../../services/files/config.js'
import { captureLogs } from '../../helpers/logs.js'
import { bearer, FakeClock, type ServiceWorld, startServiceWorld } from '../../helpers/services.js'

export interface FilesFixture {
  world: ServiceWorld
  app: FastifyInstance
  clock: FakeClock
  logs: ReturnType<typeof captureLogs>
  env: Record<string, string>
  /** Stores `content` as `name` for the holder of `token`. */
  upload(token: string, name: string, content: string | Buffer, contentType?: string): Promise<number>
  /** Issues a download link; returns the token part of its URL. */
  link(token: string, name: string): Promise<string>
}

export async function startFiles(
  t: Test,
  options: { env?: Record<string, string>; world?: ServiceWorld; clock?: FakeClock } = {},
): Promise<FilesFixture> {
  const world = options.world ?? (await startServiceWorld(t))
  const clock = options.clock ?? new FakeClock()
  const logs = captureLogs('files')
  const env = { ...world.env, ...options.env }
  const app = buildFiles({ config: loadFilesConfig(env), logger: logs.logger, now: clock.now })
  t.teardown(() => app.close())
  await app.ready()
  await app.auth.ready()
  return {
    world,
    app,
    clock,
    logs,
    env,
    async upload(token, name, content, contentType = 'application/octet-stream') {
      const r = await app.inject({
        method: 'PUT',
        url: `/files/${name}`,
        headers: { ...bearer(token), 'content-type': contentType },
        payload: content,
      })
      return r.statusCode
    },
    async link(token, name) {
      const r = await app.inject({ method: 'POST', url: `/files/${name}/link`, headers: bearer(token) })
      if (r.statusCode !== 200) throw new Error(`link: ${r.statusCode} ${r.body}`)
      return (r.json().url as string).split('/').pop()!
    },
  }
}
