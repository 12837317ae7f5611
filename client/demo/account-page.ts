/**
 * Logged out: the ways in this issuer offers (`GET /auth/methods`): password login and registration, a code
 * by e-mail, a token of the identity provider in front. Forms of methods that are off stay hidden.
 */
import type { LoginMethods } from '../index.js'
import type { Demo } from './api.js'
import { byId, fields } from './dom.js'

/** When the methods cannot be read, offer what every issuer had before LOGIN_METHODS: passwords. */
const FALLBACK: LoginMethods = { methods: ['password'], registration: 'open', externalIssuers: [] }

/** Sets up the forms; returns who logged in last from this page (an e-mail), for the status line. */
export function setUpAccountPage(demo: Demo): { lastEmail: () => string | null } {
  let lastEmail: string | null = null
  const login = byId<HTMLFormElement>('login-form')
  const register = byId<HTMLFormElement>('register-form')
  const codeRequest = byId<HTMLFormElement>('code-request-form')
  const codeVerify = byId<HTMLFormElement>('code-verify-form')
  const external = byId<HTMLFormElement>('external-form')

  void demo.keygate
    .loginMethods()
    .catch(() => FALLBACK)
    .then(({ methods, registration }) => {
      login.hidden = !methods.includes('password')
      register.hidden = !methods.includes('password') || registration !== 'open'
      codeRequest.hidden = !methods.includes('email-code')
      external.hidden = !methods.includes('external')
      const note = byId('methods-note')
      note.hidden = methods.includes('password')
      note.textContent = methods.includes('password')
        ? ''
        : 'Password login is switched off on this server for now: log in with a code sent to your e-mail.'
    })

  login.addEventListener('submit', (event) => {
    event.preventDefault()
    const { email = '', password = '' } = fields(login)
    void demo.attempt(async () => {
      lastEmail = email.trim().toLowerCase()
      await demo.keygate.login(email, password)
      login.reset()
    })
  })

  let codeEmail = ''
  codeRequest.addEventListener('submit', (event) => {
    event.preventDefault()
    const { email = '' } = fields(codeRequest)
    void demo.attempt(async () => {
      const sent = await demo.keygate.requestEmailCode(email)
      codeEmail = sent.email
      codeVerify.hidden = false
      demo.say(
        `If ${sent.email} has an account, a code is on its way; it is valid for ${Math.round(sent.expiresInMs / 60_000)} minutes.`,
      )
      ;(codeVerify.elements.namedItem('code') as HTMLInputElement).focus()
    })
  })
  codeVerify.addEventListener('submit', (event) => {
    event.preventDefault()
    const { code = '' } = fields(codeVerify)
    void demo.attempt(async () => {
      lastEmail = codeEmail
      await demo.keygate.loginWithEmailCode(codeEmail, code)
      codeVerify.reset()
      codeVerify.hidden = true
      codeRequest.reset()
    })
  })

  external.addEventListener('submit', (event) => {
    event.preventDefault()
    const { token = '' } = fields(external)
    void demo.attempt(async () => {
      lastEmail = null
      await demo.keygate.loginWithExternalToken(token.trim())
      external.reset()
    })
  })

  register.addEventListener('submit', (event) => {
    event.preventDefault()
    const { email = '', password = '' } = fields(register)
    void demo.attempt(async () => {
      const account = await demo.keygate.register(email, password)
      register.reset()
      demo.say(`Registered ${account.email}: you can log in now.`)
      const loginEmail = login.elements.namedItem('email') as HTMLInputElement
      loginEmail.value = account.email
    })
  })
  return { lastEmail: () => lastEmail }
}
