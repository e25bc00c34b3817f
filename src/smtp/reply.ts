// SMTP replies (RFC 5321 4.2): a three-digit code, an enhanced status code
// (RFC 3463, announced by ENHANCEDSTATUSCODES, RFC 2034) and text. Handlers
// return these; only the session loop turns them into bytes.

export interface Reply {
  code: number;
  /** `x.y.z` (RFC 3463); omitted for the greeting and EHLO lines (RFC 2034 3). */
  enhanced?: string;
  /** One string, or several for a multi-line reply. */
  text: string | string[];
}

/** RFC 5321 4.2.1: every line but the last has a hyphen after the code. */
export function formatReply(reply: Reply): string {
  const prefix = reply.enhanced ? `${reply.enhanced} ` : '';
  if (!Array.isArray(reply.text)) return `${reply.code} ${prefix}${reply.text}\r\n`;
  const lines = reply.text;
  return lines.map((line, i) => `${reply.code}${i < lines.length - 1 ? '-' : ' '}${prefix}${line}\r\n`).join('');
}

export function reply(code: number, enhanced: string, text: string | string[]): Reply {
  return { code, enhanced, text };
}
