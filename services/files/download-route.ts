/**
 * `GET /files/download/:token`: no login, the link is the credential. It is served once: the link's
 * `jti` is spent (one conditional insert) before any byte goes out, so a second or concurrent use gets
 * 410. A link that does not verify is 401 `KG_LINK_INVALID`; an expired or spent one, or one for a file
 * replaced since it was issued, is 410 `KG_LINK_GONE`.
 */
import type { FastifyInstance } from 'fastify'
import { KeygateError } from '../../lib/errors.js'
import type { DownloadLinks } from './download-links.js'
import { attachmentDisposition } from './file-names.js'
import type { FileStore } from './store.js'

/**
 * How long after their expiry spent link ids are still remembered, in milliseconds: covers clock steps
 * between instances sharing the store (links are refused for expiry past that anyway).
 */
export const SPENT_LINK_MEMORY_MS = 5 * 60_000

export interface DownloadRouteOptions {
  store: FileStore
  links: DownloadLinks
  now: () => number
}

/** Headers of a served file: downloaded, never rendered, sniffed, cached or given a Referer. */
const DOWNLOAD_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; sandbox",
  'referrer-policy': 'no-referrer',
}

export async function downloadRoute(app: FastifyInstance, options: DownloadRouteOptions): Promise<void> {
  const { store, links, now } = options

  app.get<{ Params: { token: string } }>(
    '/files/download/:token',
    {
      config: { auth: { mode: 'none' } },
      // A HEAD (a link preview, a prefetcher) must not spend the one use.
      exposeHeadRoute: false,
      schema: {
        params: {
          type: 'object',
          required: ['token'],
          additionalProperties: false,
          properties: { token: { type: 'string' } },
        },
        response: {
          200: {
            description:
              "The file's bytes, once, as an attachment with the Content-Type it was stored with; " +
              'never cached',
            content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
          },
        },
      },
    },
    async (request, reply) => {
      reply.headers(DOWNLOAD_HEADERS)
      const grant = links.verify(request.params.token)
      // An unspent link dies with the access of whom it was issued to (logout, password or role change).
      if (app.auth.revocations.get(grant.issuedTo.issuer)?.isRevoked(grant.issuedTo)) {
        throw new KeygateError('KG_LINK_GONE')
      }
      const file = await store.find(grant.owner, grant.file)
      if (!file)
        throw new KeygateError('KG_LINK_INVALID', { message: 'The download link is not for a stored file' })
      if (file.id !== grant.fileId) throw new KeygateError('KG_LINK_GONE')
      if (!(await store.spendLink(grant.jti, grant.expiresAt, now() - SPENT_LINK_MEMORY_MS))) {
        throw new KeygateError('KG_LINK_GONE')
      }
      // Replaced between the check and now: the linked version is gone, and the use is spent.
      const content = await store.content(grant.owner, grant.file, grant.fileId)
      if (!content) throw new KeygateError('KG_LINK_GONE')
      request.log.info(
        { principal: grant.owner, file: grant.file, size: content.content.length },
        'download link used',
      )
      return reply
        .type(content.contentType)
        .header('content-disposition', attachmentDisposition(grant.file))
        .send(content.content)
    },
  )
}
