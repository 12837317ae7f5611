/**
 * The caller's files: `PUT /files/:name` (raw body of any type, up to FILES_MAX_BYTES, within the
 * caller's quota), `GET /files`, `DELETE /files/:name`, and `POST /files/:name/link` for a one-time
 * download link. Links are served by download-route.ts.
 */
import type { FastifyInstance } from 'fastify'
import { KeygateError } from '../../lib/errors.js'
import { noContent } from '../../lib/openapi.js'
import { verifiedCaller } from '../../lib/service.js'
import type { DownloadLinks } from './download-links.js'
import { FILE_NAME_PATTERN, storedContentType } from './file-names.js'
import { type FileStore, QuotaExceededError } from './store.js'

/** Where the gateway's default route table exposes files' download route (`/api/files` → `/files`). */
export const GATEWAY_DOWNLOAD_PATH = '/api/files/download/'

export interface FileRoutesOptions {
  store: FileStore
  links: DownloadLinks
  maxBytes: number
  /** Base of the links handed out (PUBLIC_URL): clients download through the gateway. */
  publicUrl: string
  now: () => number
}

const NameParamsSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', pattern: FILE_NAME_PATTERN } },
} as const

const FileInfoSchema = {
  type: 'object',
  required: ['name', 'size', 'contentType', 'updatedAt'],
  properties: {
    name: { type: 'string' },
    size: { type: 'integer' },
    contentType: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const

const LinkSchema = {
  type: 'object',
  required: ['url', 'expires_in'],
  properties: { url: { type: 'string' }, expires_in: { type: 'integer' } },
} as const

/** The answer to an upload past the quota: which bound, its limit, and what the caller already uses. */
function quotaExceeded({ quota, limit, used }: QuotaExceededError): KeygateError {
  const what = quota === 'bytes' ? 'storage' : 'file count'
  return new KeygateError('KG_QUOTA_EXCEEDED', {
    message: `Storing this would exceed your ${what} quota; delete files to make room`,
    details: { quota, limit, used },
  })
}

function isAbsentOrEmpty(body: unknown): boolean {
  return (
    body === undefined ||
    (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0)
  )
}

export async function fileRoutes(app: FastifyInstance, options: FileRoutesOptions): Promise<void> {
  const { store, links, maxBytes, publicUrl, now } = options

  await app.register(async function uploads(scope) {
    // Files are opaque bytes: every content type (JSON included) arrives as a Buffer, never parsed.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBytes }, (_request, body, done) => {
      done(null, body)
    })
    scope.put<{ Params: { name: string }; Body: Buffer | undefined }>(
      '/files/:name',
      {
        bodyLimit: maxBytes,
        schema: { params: NameParamsSchema, response: { 200: FileInfoSchema, 201: FileInfoSchema } },
      },
      async (request, reply) => {
        const identity = verifiedCaller(request)
        const contentType = storedContentType(request.headers['content-type'])
        if (contentType === undefined) {
          throw new KeygateError('KG_INVALID_REQUEST', { message: 'Invalid Content-Type header' })
        }
        const content = request.body ?? Buffer.alloc(0)
        let stored: Awaited<ReturnType<FileStore['put']>>
        try {
          stored = await store.put(identity.principal, request.params.name, contentType, content, now())
        } catch (err) {
          if (!(err instanceof QuotaExceededError)) throw err
          const { quota, limit, used } = err
          request.log.info(
            { principal: identity.principal, quota, limit, used, size: content.length },
            'upload refused',
          )
          throw quotaExceeded(err)
        }
        const { created, file } = stored
        request.log.info(
          { principal: identity.principal, file: file.name, size: file.size, created },
          'file stored',
        )
        const { id: _id, ...info } = file
        return reply.code(created ? 201 : 200).send(info)
      },
    )
  })

  app.get(
    '/files',
    {
      schema: {
        response: {
          200: { type: 'object', properties: { files: { type: 'array', items: FileInfoSchema } } },
        },
      },
    },
    async (request) => ({ files: await store.list(verifiedCaller(request).principal) }),
  )

  // Its download links die with it: they name a version of a file that no longer exists.
  app.delete<{ Params: { name: string } }>(
    '/files/:name',
    {
      schema: {
        params: NameParamsSchema,
        response: { 204: noContent('The file deleted, and its download links with it') },
      },
    },
    async (request, reply) => {
      const identity = verifiedCaller(request)
      // Another user's file is simply not among the caller's: 404, as for a name nobody has.
      if (!(await store.remove(identity.principal, request.params.name))) {
        throw new KeygateError('KG_NOT_FOUND', { message: 'No such file' })
      }
      request.log.info({ principal: identity.principal, file: request.params.name }, 'file deleted')
      return reply.code(204).send()
    },
  )

  app.post<{ Params: { name: string } }>(
    '/files/:name/link',
    {
      schema: {
        params: NameParamsSchema,
        response: { 200: LinkSchema },
      },
    },
    async (request) => {
      // No options yet: no body, or an empty JSON object. (A body schema would also refuse no body.)
      if (!isAbsentOrEmpty(request.body)) {
        throw new KeygateError('KG_INVALID_REQUEST', {
          message: 'Invalid body: this request takes no options',
        })
      }
      const identity = verifiedCaller(request)
      const file = await store.find(identity.principal, request.params.name)
      if (!file) throw new KeygateError('KG_NOT_FOUND', { message: 'No such file' })
      const { token, expiresIn } = links.issue(identity, file)
      request.log.info(
        { principal: identity.principal, file: file.name, expires_in: expiresIn },
        'download link issued',
      )
      return { url: `${publicUrl}${GATEWAY_DOWNLOAD_PATH}${token}`, expires_in: expiresIn }
    },
  )
}
