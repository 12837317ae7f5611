/**
 * Mail through a real SMTP server started here (smtp-server): the code is read from the delivered message
 * and logs in; STARTTLS is used when offered; a server that refuses or hangs costs retries and a metric,
 * never the HTTP answer.
 */
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'
import t, { type Test } from 'tap'
import { assertNoSecretsLogged, claimsOf, issuerFixture } from '../fixtures.js'
import { codeIn, outboxFiles } from '../mail-outbox.js'

type App = Awaited<ReturnType<typeof issuerFixture>>['app']

interface Delivered {
  from: string
  to: string[]
  message: string
  secure: boolean
  user: string | undefined
}

/** An SMTP server on a free loopback port, closed at teardown; `delivered` fills as mail arrives. */
async function smtpServer(t: Test, options: Partial<SMTPServerOptions> = {}) {
  const delivered: Delivered[] = []
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    onAuth(auth, _session, callback) {
      if (auth.username === 'mailer' && auth.password === 'smtp-secret-pw')
        callback(null, { user: auth.username })
      else callback(new Error('Invalid username or password'))
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        delivered.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          message: Buffer.concat(chunks).toString('utf8'),
          secure: session.secure,
          user: session.user as string | undefined,
        })
        callback()
      })
    },
    ...options,
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.server.address() as AddressInfo).port
  return { port, delivered }
}

const requestCode = (app: App, email: string) =>
  app.inject({ method: 'POST', url: '/auth/email-code', payload: { email } })

async function deliveries(app: App): Promise<Record<string, number>> {
  const metric = app.metrics.getSingleMetric('keygate_issuer_mail_deliveries_total')
  const values = (await metric!.get()).values
  return Object.fromEntries(values.map((v) => [String(v.labels.outcome), v.value]))
}

t.test('SMTP with STARTTLS and credentials: the delivered code logs in', async (t) => {
  const smtp = await smtpServer(t)
  const { app, config, logs } = await issuerFixture(t, {
    env: {
      LOGIN_METHODS: 'email-code',
      // The test server's certificate is self-signed; the URL's tls.* options reach nodemailer.
      SMTP_URL: `smtp://mailer:smtp-secret-pw@127.0.0.1:${smtp.port}/?tls.rejectUnauthorized=false`,
      MAIL_FROM: 'Keygate <login@example.com>',
    },
  })
  // No account yet: registration is open, so the code creates it.
  t.equal((await requestCode(app, 'grace@example.com')).statusCode, 202)
  await app.issuer.mail.whenIdle()
  t.equal(smtp.delivered.length, 1)
  const [mail] = smtp.delivered
  t.same(mail!.to, ['grace@example.com'])
  t.equal(mail!.from, 'login@example.com')
  t.ok(mail!.secure, 'upgraded with STARTTLS')
  t.equal(mail!.user, 'mailer', 'authenticated with the URL credentials')
  t.notMatch(mail!.message, /^Subject:.*\d{6}/m, 'the code stays out of the subject')
  const code = codeIn(mail!.message)
  t.ok(code, 'the message carries the code')
  const res = await app.inject({
    method: 'POST',
    url: '/auth/email-code/verify',
    payload: { email: 'grace@example.com', code },
  })
  t.equal(res.statusCode, 200)
  const user = await app.issuer.store.findUserByEmail('grace@example.com')
  t.equal(claimsOf(res.json().access_token).sub, user?.id)
  t.same(outboxFiles(config.DATA_DIR), [], 'nothing went to the outbox')
  t.same(await deliveries(app), { sent: 1, retried: 0, failed: 0 })
  assertNoSecretsLogged(t, logs, [code!, 'smtp-secret-pw'])
})

t.test(
  'a server that refuses: retried, counted, logged without the code; the answer does not wait',
  async (t) => {
    const smtp = await smtpServer(t, {
      onRcptTo(_address, _session, callback) {
        callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }))
      },
    })
    const { app, logs } = await issuerFixture(t, {
      env: {
        LOGIN_METHODS: 'email-code',
        SMTP_URL: `smtp://127.0.0.1:${smtp.port}/?tls.rejectUnauthorized=false`,
        MAIL_RETRIES: '2',
        MAIL_RETRY_DELAY: '10ms',
      },
    })
    const res = await requestCode(app, 'refused@example.com')
    t.equal(res.statusCode, 202)
    await app.issuer.mail.whenIdle()
    t.same(await deliveries(app), { sent: 0, retried: 2, failed: 1 })
    t.equal(smtp.delivered.length, 0)
    t.equal(logs.find('mail delivery failed; retrying').length, 2)
    const failed = logs.find('"mail delivery failed"')
    t.equal(failed.length, 1)
    t.match(failed[0], /"responseCode":550/)
    t.same(logs.find('login code is'), [], 'the message text is never logged')
  },
)

/** A TCP server that accepts connections and never says a word (no SMTP greeting). */
async function silentServer(t: Test) {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, sockets }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10))
}

t.test('a server that hangs: the answer never waits; each attempt times out', async (t) => {
  const hanging = await silentServer(t)
  const waiting = await issuerFixture(t, {
    env: {
      LOGIN_METHODS: 'email-code',
      SMTP_URL: `smtp://127.0.0.1:${hanging.port}`,
      MAIL_RETRIES: '0',
      MAIL_TIMEOUT: '1h',
    },
  })
  t.equal((await requestCode(waiting.app, 'hang@example.com')).statusCode, 202, 'answered')
  await until(() => hanging.sockets.size === 1)
  t.same(await deliveries(waiting.app), { sent: 0, retried: 0, failed: 0 }, 'while delivery hangs')
  for (const socket of hanging.sockets) socket.destroy()
  await waiting.app.issuer.mail.whenIdle()
  t.same(await deliveries(waiting.app), { sent: 0, retried: 0, failed: 1 }, 'a dropped connection fails')

  const silent = await silentServer(t)
  const { app } = await issuerFixture(t, {
    env: {
      LOGIN_METHODS: 'email-code',
      SMTP_URL: `smtp://127.0.0.1:${silent.port}`,
      MAIL_RETRIES: '1',
      MAIL_RETRY_DELAY: '10ms',
      MAIL_TIMEOUT: '300ms',
    },
  })
  t.equal((await requestCode(app, 'hang@example.com')).statusCode, 202)
  await app.issuer.mail.whenIdle()
  t.same(await deliveries(app), { sent: 0, retried: 1, failed: 1 }, 'MAIL_TIMEOUT ends each attempt')
})

t.test('SMTP_URL must be smtp:// or smtps://', async (t) => {
  await t.rejects(issuerFixture(t, { env: { SMTP_URL: 'http://mail.example' } }), /SMTP_URL/)
})
