/** Logged out: the login and registration forms. */
import type { Demo } from './api.js'
import { byId, fields } from './dom.js'

export function setUpAccountPage(demo: Demo): void {
  const login = byId<HTMLFormElement>('login-form')
  login.addEventListener('submit', (event) => {
    event.preventDefault()
    const { email = '', password = '' } = fields(login)
    void demo.attempt(async () => {
      await demo.keygate.login(email, password)
      login.reset()
    })
  })

  const register = byId<HTMLFormElement>('register-form')
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
}
