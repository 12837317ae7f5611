/**
 * Stored revocation events in the shapes verifiers take: the revocation set's (for the issuer's own
 * verifier) and the feed's wire format (lib/auth/feed-protocol.ts), which adds the cursor and the time.
 */
import type { WireRevocationEvent } from '../../../lib/auth/feed-protocol.js'
import type { RevocationEvent as VerifierRevocationEvent } from '../../../lib/auth/revocation-set.js'
import type { RevocationEvent, StoredRevocationEvent } from '../store/types.js'

/**
 * A revocation event as a verifier's revocation set applies it: session → `sessionId`, user → `subject` and
 * `issuedBefore` (ms), token → `tokenId`, key → `kid`.
 */
export function toVerifierEvent(event: RevocationEvent): VerifierRevocationEvent {
  switch (event.type) {
    case 'session':
      return { type: 'session', sessionId: event.sessionId!, expiresAt: event.expiresAt }
    case 'user':
      return {
        type: 'user',
        subject: event.userId!,
        issuedBefore: event.issuedBefore,
        expiresAt: event.expiresAt,
      }
    case 'token':
      return { type: 'token', tokenId: event.jti!, expiresAt: event.expiresAt }
    case 'key':
      return { type: 'key', kid: event.kid!, expiresAt: event.expiresAt }
  }
}

/** A stored event as it travels on the feed. */
export function toWireEvent(event: StoredRevocationEvent): WireRevocationEvent {
  return { ...toVerifierEvent(event), cursor: event.cursor, createdAt: event.createdAt }
}
