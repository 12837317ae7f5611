/**
 * What the client takes from the browser, behind one interface so that tests can run it in Node with fakes
 * (a fake server behind `fetch`, a shared lock manager and channel standing for several tabs, a manual clock).
 */

/** The part of `navigator.locks` the client uses. */
export interface LockRequester {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>
}

/** The part of a `BroadcastChannel` the client uses. */
export interface TabChannelPort {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  close(): void
}

export interface ClientRuntime {
  fetch(input: string, init?: RequestInit): Promise<Response>
  /** Milliseconds since the epoch; every tab of one browser shares this clock. */
  now(): number
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  /** A number in [0, 1), spreading the refresh timers of several tabs. */
  random(): number
  /** `navigator.locks`, or undefined where Web Locks are missing (an insecure context, an old browser). */
  locks: LockRequester | undefined
  /** Opens a `BroadcastChannel`, or undefined where there is none. */
  openChannel: ((name: string) => TabChannelPort) | undefined
  /** `document.cookie` (only the cookies scripts may read). */
  cookies(): string
  /** The page's URL, against which relative paths resolve; undefined outside a page. */
  pageUrl(): string | undefined
  /** Calls `callback` whenever the page becomes visible again; returns a function that stops that. */
  onVisible(callback: () => void): () => void
}

/** The real thing, in a browser page (or whatever parts of it exist where the client runs). */
export function browserRuntime(): ClientRuntime {
  const locks = typeof navigator === 'undefined' ? undefined : navigator.locks
  return {
    // Called through a wrapper: `fetch` invoked as a method of another object throws "Illegal invocation".
    fetch: (input, init) => globalThis.fetch(input, init),
    now: () => Date.now(),
    setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
    random: () => Math.random(),
    // The DOM typings say Promise<Promise<T>>; a promise returned by the callback is adopted, so it is T.
    locks: locks
      ? {
          request: <T>(name: string, callback: () => Promise<T>) =>
            locks.request(name, callback) as Promise<T>,
        }
      : undefined,
    openChannel: typeof BroadcastChannel === 'function' ? (name) => new BroadcastChannel(name) : undefined,
    cookies: () => (typeof document === 'undefined' ? '' : document.cookie),
    pageUrl: () => (typeof location === 'undefined' ? undefined : location.href),
    onVisible(callback) {
      if (typeof document === 'undefined') return () => undefined
      const listener = () => {
        if (document.visibilityState === 'visible') callback()
      }
      document.addEventListener('visibilitychange', listener)
      return () => document.removeEventListener('visibilitychange', listener)
    },
  }
}
