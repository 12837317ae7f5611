/**
 * The demo app: one page served by the gateway at `/`, using the client exactly as an app would. Pages are
 * chosen by the URL's hash (#profile, #orders, #files, #admin); logged out, the account page shows.
 */
import { KeygateClient, type LogoutReason, type SessionEvent } from '../index.js'
import { setUpAccountPage } from './account-page.js'
import { setUpAdminPage } from './admin-page.js'
import { createDemo } from './api.js'
import { byId } from './dom.js'
import { setUpFilesPage } from './files-page.js'
import { setUpOrdersPage } from './orders-page.js'
import { type Me, setUpProfilePage } from './profile-page.js'

type Page = 'account' | 'profile' | 'orders' | 'files' | 'admin'

const LOGOUT_MESSAGES: Record<LogoutReason, string> = {
  logout: 'You logged out.',
  'logout-all': 'You logged out everywhere: every session of your account has ended.',
  'session-ended': 'Your session ended (it expired or was revoked). Please log in again.',
  'no-session': '',
}

const keygate = new KeygateClient()
const demo = createDemo(keygate)
let me: Me | null = null
const refreshes = { here: 0, relayed: 0 }

const account = setUpAccountPage(demo)
const loaders: Record<Exclude<Page, 'account'>, () => Promise<void>> = {
  profile: setUpProfilePage(demo, (fresh) => {
    me = fresh
    showStatus()
  }),
  orders: setUpOrdersPage(demo),
  files: setUpFilesPage(demo),
  admin: setUpAdminPage(demo),
}

function isAdmin(): boolean {
  return me?.roles.includes('admin') ?? false
}

function showStatus(): void {
  const status = byId('session-status')
  status.dataset.status = keygate.status
  if (keygate.status === 'logged-in') {
    // A name people recognise: the display name, else the e-mail they logged in with, never the raw id.
    const who = me ? (me.profile.displayName ?? account.lastEmail() ?? 'you') : '…'
    status.textContent = `Logged in as ${who}${me?.roles.length ? ` (${me.roles.join(', ')})` : ''}`
  } else if (keygate.status === 'logged-out') {
    status.textContent = 'Logged out'
  }
  const loggedIn = keygate.status === 'logged-in'
  byId('nav').hidden = !loggedIn
  byId('session-panel').hidden = !loggedIn
  byId('nav-admin').hidden = !isAdmin()
}

function show(page: Page): void {
  for (const section of document.querySelectorAll<HTMLElement>('[data-page]')) {
    section.hidden = section.dataset.page !== page
  }
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (link.hash === `#${page}`) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
}

/** Shows the page the hash names, loading its data. */
async function route(): Promise<void> {
  if (keygate.status !== 'logged-in') {
    show('account')
    return
  }
  const named = location.hash.slice(1)
  const page =
    named in loaders && (named !== 'admin' || isAdmin()) ? (named as keyof typeof loaders) : 'profile'
  show(page)
  await demo.attempt(loaders[page])
}

async function enter(fromOtherTab: boolean): Promise<void> {
  me = null
  showStatus()
  if (fromOtherTab) demo.say('Logged in from another tab.')
  await demo.attempt(loaders.profile)
  await route()
}

function leave(reason: LogoutReason, fromOtherTab: boolean): void {
  me = null
  showStatus()
  show('account')
  const message = LOGOUT_MESSAGES[reason]
  if (message)
    demo.say(
      fromOtherTab ? `${message} (in another tab)` : message,
      reason === 'session-ended' ? 'error' : 'info',
    )
}

function onSessionEvent(event: SessionEvent): void {
  if (event.type === 'login') void enter(event.fromOtherTab)
  else if (event.type === 'logout') leave(event.reason, event.fromOtherTab)
  else {
    refreshes[event.fromOtherTab ? 'relayed' : 'here'] += 1
    byId('refresh-count').textContent = String(refreshes.here)
    byId('relayed-count').textContent = String(refreshes.relayed)
  }
}

function showExpiry(): void {
  const expiresAt = keygate.expiresAt
  byId('token-expiry').textContent =
    expiresAt === null ? '–' : `expires in ${Math.max(0, Math.round((expiresAt - Date.now()) / 1000))} s`
}

keygate.subscribe(onSessionEvent)
byId('lock-kind').textContent = keygate.crossTabLocking ? 'Web Locks' : 'this tab only (no Web Locks)'
byId('refresh-now').addEventListener('click', () => void demo.attempt(() => keygate.refresh()))
byId('logout').addEventListener('click', () => void demo.attempt(() => keygate.logout()))
byId('logout-all').addEventListener('click', () => void demo.attempt(() => keygate.logoutAll()))
window.addEventListener('hashchange', () => void route())
setInterval(showExpiry, 500)

keygate.restore().catch((err: Error) => {
  demo.say(`Cannot reach the gateway (${err.message}); reload to try again.`, 'error')
  show('account')
})
