// IDLE (RFC 2177): the client says it will wait, and the server tells it of
// changes as they happen (new mail, expunges, flags) instead of waiting for
// the next command. The client ends it with DONE.
//
//     C: A4 IDLE
//     S: + idling
//     S: * 4 EXISTS                 (a delivery, within a second)
//     C: DONE
//     S: A4 OK IDLE terminated
//
// Deliveries in this process wake the session at once (store/mailbox-
// registry.ts); changes by other programs are found by a check every second
// while someone idles on that mailbox (store/mailbox-state.ts).

import { bad, bye, ok } from './response.ts';
import type { ImapResponse } from './response.ts';
import type { SessionIO } from '../protocol/types.ts';
import type { ImapOutcome, ImapRequest, ImapState, ImapView } from './types.ts';
import { pendingUpdates } from './extensions.ts';

export function idle(session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  args.end();
  return { next: { kind: 'run', run: (io) => idling(io, tag) } };
}

// Why this writes with `conn.send` and not `io.send`: `io.send` takes a
// whole response (ImapResponse), and every response ends with a status line
// (`A4 OK ...`, `* BYE ...`). What IDLE sends while it waits is not one: a
// continuation request (`+ idling`, RFC 3501 7.5) and untagged data alone
// (`* 4 EXISTS`, RFC 2177 3), none of it ending the command. So, like the
// loop's own SASL challenges (protocol/session.ts), these lines go to the
// connection directly and are traced here; the tagged OK that ends IDLE is
// returned and sent by the loop as usual.
async function idling(io: SessionIO<ImapResponse, ImapState>, tag: string): Promise<ImapOutcome | null> {
  const { conn } = io;
  const selected = io.state.selected;
  const tell = () => {
    for (const line of pendingUpdates(io.state, true)) {
      io.log.trace('S', `* ${line}`);
      conn.send(`* ${line}\r\n`);
    }
    conn.flush();
  };
  io.log.trace('S', '+ idling');
  conn.send('+ idling\r\n');
  selected?.mailbox.watch(true);
  try {
    tell(); // anything already waiting
    const line = conn.readLine(); // DONE (or the end of the connection) ends it
    for (;;) {
      const woken = new Promise<'woken'>((resolve) => selected?.onNextChange(() => resolve('woken')));
      const first = await Promise.race([line, woken]);
      if (first === 'woken') {
        if (selected?.mailbox.gone) return { reply: bye('The selected mailbox was deleted or renamed'), next: { kind: 'close' } };
        tell();
        continue;
      }
      if (first.kind !== 'line') {
        if (first.kind === 'closed') return null;
        return { reply: bye(first.kind === 'timeout' ? 'Autologout; idle for too long' : 'Server shutting down'), next: { kind: 'close' } };
      }
      io.log.trace('C', first.text);
      if (first.text.toUpperCase() !== 'DONE') return { reply: bad(tag, 'Expected DONE to end IDLE') };
      return { reply: ok(tag, 'IDLE terminated', undefined, pendingUpdates(io.state, true)) };
    }
  } finally {
    selected?.onNextChange(() => {});
    selected?.mailbox.watch(false);
  }
}
