// Inline images (RFC 2387 multipart/related, RFC 2392 cid: URLs) through
// the real webmail against the real mail server: the HTML frame points
// each cid: image at a signed /message/inline link (usable without the
// cookie, as the sandboxed frame must, for that image and session only),
// whose path alone the frame's policy adds to img-src; a PNG comes back as image/png, inline, nosniff; parts
// that could hold script (SVG, HTML) never come back as anything a
// browser renders; the images the HTML shows are not listed as
// attachments, a part with a Content-ID it does not show still is.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliver, mailServer, startTestWebmail } from './helpers.ts';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const GIF = Buffer.from('R0lGODlhAQABAAAAACw=', 'base64');

const MESSAGE = [
  'From: news@example.net',
  'To: jjordan@localhost',
  'Subject: With a logo',
  'MIME-Version: 1.0',
  'Content-Type: multipart/alternative; boundary="alt"',
  '',
  '--alt',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'The plain version.',
  '--alt',
  'Content-Type: multipart/related; boundary="rel"',
  '',
  '--rel',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>Our logo: <img src="cid:logo%40example.net" alt="logo"></p>',
  "<p><img src='cid:drawing@example.net'> <img src=cid:page@example.net> <img src=\"cid:nowhere@example.net\">",
  '<img src="https://tracker.example/pixel.gif"></p>',
  '--rel',
  'Content-Type: image/png; name="logo.png"',
  'Content-ID: <logo@example.net>',
  'Content-Disposition: inline; filename="logo.png"',
  'Content-Transfer-Encoding: base64',
  '',
  PNG.toString('base64'),
  '--rel',
  'Content-Type: image/svg+xml; name="drawing.svg"',
  'Content-ID: <drawing@example.net>',
  '',
  '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
  '--rel',
  'Content-Type: text/html; name="page.html"',
  'Content-ID: <page@example.net>',
  '',
  '<script>alert(2)</script>',
  '--rel',
  'Content-Type: image/gif; name="unused.gif"',
  'Content-ID: <unused@example.net>',
  'Content-Transfer-Encoding: base64',
  '',
  GIF.toString('base64'),
  '--rel--',
  '',
  '--alt--',
  '',
].join('\r\n');

test('inline cid: images: shown through /message/inline in the frame, raster types only, not listed as attachments', async (t) => {
  const server = await mailServer(t);
  await deliver(server, MESSAGE);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();

  // The message page: the logo is in the frame, not in the list; the rest is listed.
  const page = (await browser.get('/message?folder=INBOX&uid=1')).text;
  const listed = [...page.matchAll(/href="\/message\/attachment\?[^"]*"[^>]*>([^<]+)</g)].map((m) => m[1]);
  assert.deepEqual(listed.sort(), ['drawing.svg', 'page.html', 'unused.gif'], 'the shown image is not an attachment; the others are');

  // The frame: each cid: of a part of this message points at a signed /message/inline link; one naming no part stays.
  const frameUrl = /<iframe class="mail" src="([^"]+)"/.exec(page)![1].replaceAll('&amp;', '&');
  const frame = await browser.get(frameUrl);
  assert.equal(frame.status, 200);
  const links = [...frame.text.matchAll(/<img src="(\/message\/inline\?[^"]+)"/g)].map((m) => m[1].replaceAll('&amp;', '&'));
  const linkTo = (part: string) => links.find((link) => new URLSearchParams(link.split('?')[1]).get('part') === part)!;
  assert.deepEqual(links.map((link) => new URLSearchParams(link.split('?')[1]).get('part')), ['2.2', '2.3', '2.4'], 'double, single and no quotes');
  assert.match(frame.text, /<img src="\/message\/inline\?[^"]+" alt="logo">/);
  assert.ok(frame.text.includes('<img src="cid:nowhere@example.net">'), 'a cid: naming no part is left alone');
  const policy = String(frame.headers['content-security-policy']);
  assert.match(policy, new RegExp(`img-src data: https://localhost:${webmail.port}/message/inline;`), 'that path alone, and no remote images');
  assert.doesNotMatch(policy, /script-src/);

  // The PNG: its bytes, as an image, inline, never sniffed; fetched as the sandboxed frame
  // does, without the session cookie (the signed link says whose it is).
  const frameLike = webmail.browser();
  const logo = await frameLike.get(linkTo('2.2'));
  assert.equal(logo.status, 200);
  assert.equal(logo.headers['content-type'], 'image/png');
  assert.equal(logo.headers['content-disposition'], 'inline');
  assert.equal(logo.headers['x-content-type-options'], 'nosniff');
  assert.ok(logo.body.equals(PNG), 'the image, byte for byte');

  // The signature covers the image: the same link with another part, or no signature, opens nothing.
  assert.equal((await frameLike.get(linkTo('2.2').replace('part=2.2', 'part=2.5'))).status, 403);
  assert.equal((await frameLike.get(linkTo('2.2').replace(/&sig=[^&]*/, ''))).status, 403);

  // SVG and HTML can carry script: asked for as images, they come as downloads nothing renders.
  for (const [part, name] of [['2.3', 'drawing.svg'], ['2.4', 'page.html']]) {
    const risky = await frameLike.get(linkTo(part));
    assert.equal(risky.status, 200);
    assert.equal(risky.headers['content-type'], 'application/octet-stream', name);
    assert.match(String(risky.headers['content-disposition']), new RegExp(`^attachment; filename="${name.replace('.', '\\.')}"`), name);
    assert.equal(risky.headers['x-content-type-options'], 'nosniff');
    assert.match(String(risky.headers['content-security-policy']), /sandbox/);
  }

  // Remote images stay blocked until asked for; then they are allowed as well.
  const withImages = await browser.get(`${frameUrl}&images=1`);
  assert.match(String(withImages.headers['content-security-policy']), /img-src data: https:\/\/localhost:\d+\/message\/inline https: http:;/);

  // The plain-text view shows no images, so there every part is listed.
  const textView = (await browser.get('/message?folder=INBOX&uid=1&view=text')).text;
  assert.match(textView, />logo\.png</);

  // The links die with the session.
  const logout = await browser.post('/logout', { _csrf: /name="_csrf" value="([^"]+)"/.exec(textView)![1] });
  assert.equal(logout.status, 303);
  assert.equal((await frameLike.get(linkTo('2.2'))).status, 403);
});

test('an HTML mail without cid: images: the frame\'s policy does not add /message/inline', async (t) => {
  const server = await mailServer(t);
  await deliver(server, 'From: a@example.net\r\nSubject: plain html\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>hi <img src="cid:x@y"></p>\r\n');
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const frame = await browser.get('/message/html?folder=INBOX&uid=1&part=1');
  assert.equal(frame.status, 200);
  assert.match(String(frame.headers['content-security-policy']), /img-src data:;/);
  assert.equal((await browser.get('/message/inline?folder=INBOX&uid=1&part=1')).status, 403, 'no signed link, no part, cookie or not');
});
