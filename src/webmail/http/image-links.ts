// Signed links to the inline images of a mail (mail/inline-images.ts).
//
// The mail's frame is sandboxed: its origin is opaque, so to the browser
// every request it makes is cross-site, and the SameSite=Strict session
// cookie is not sent with its image requests (Chromium answers them with
// our login page). So the link itself names its session, by a key that is
// not the session id, and carries a signature over the one image it names
// (folder, UID, part), made with a secret of that session (HMAC-SHA256).
// A link opens that image only, only while the session lives; it appears
// only in the frame's HTML (no-store) and goes to no other site
// (Referrer-Policy: no-referrer). The password and the session id never
// appear in it.

import { createHmac } from 'node:crypto';
import { tokensMatch } from './csrf.ts';

export interface ImageLinkKeys {
  /** Names the session in the link. */
  readonly imageKey: string;
  /** Signs the links; never leaves the process. */
  readonly imageSecret: string;
}

function signature(keys: ImageLinkKeys, folder: string, uid: number, part: string): string {
  return createHmac('sha256', keys.imageSecret).update(`${folder}\n${uid}\n${part}`).digest('base64url');
}

/** The query of a link to one part: which session, which image, and the signature. */
export function signedImageQuery(keys: ImageLinkKeys, folder: string, uid: number, part: string): Record<string, string | number> {
  return { folder, uid, part, k: keys.imageKey, sig: signature(keys, folder, uid, part) };
}

export function imageSignatureValid(keys: ImageLinkKeys, folder: string, uid: number, part: string, given: string | null): boolean {
  return tokensMatch(signature(keys, folder, uid, part), given);
}
