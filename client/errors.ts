/**
 * The errors the client throws: an HTTP answer it cannot turn into a result, and the logged-out state.
 */

/** An answer from the gateway or the issuer that is not a success; carries keygate's stable error code. */
export class KeygateHttpError extends Error {
  override name = 'KeygateHttpError'
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** keygate's stable code (`KG_INVALID_CREDENTIALS`, …), or `''` when the body had none. */
    readonly code: string,
    message: string,
  ) {
    super(message)
  }

  /**
   * The error a failed response stands for, from keygate's `{ error, code, message }` body if it has one.
   * @example
   * const response = await keygate.fetch('/api/orders')
   * if (!response.ok) throw await KeygateHttpError.from(response)
   */
  static async from(response: Response): Promise<KeygateHttpError> {
    let code = ''
    let message = `${response.status} ${response.statusText}`.trim()
    try {
      const body = (await response.json()) as { code?: unknown; message?: unknown }
      if (typeof body.code === 'string') code = body.code
      if (typeof body.message === 'string') message = body.message
    } catch {
      // Not JSON (a proxy's error page): the status line says enough.
    }
    return new KeygateHttpError(response.status, code, message)
  }
}

/** Thrown by calls that need a session when there is none (never logged in, logged out, session ended). */
export class KeygateLoggedOutError extends Error {
  override name = 'KeygateLoggedOutError'
  constructor(message = 'Not logged in') {
    super(message)
  }
}
