// The webmail in a real browser: Debian's headless Chromium, driven over the
// DevTools protocol with Node's own WebSocket client (cdp.ts). It logs in
// with the keyboard, opens a message, sends one, and opens an HTML mail
// whose script tries to call a server of ours and whose image is remote:
// neither may reach that server until the reader asks for the images (and
// the script never). A control page with the same script shows the probe
// would have seen it run.
//
// Screenshots of the login, list and message pages (and the list on a
// phone-sized screen) are saved for a person to look at, in the folder
// printed at the end (under the OS temp directory).
//
// Skipped, saying why, where Chromium is not installed (.ci/run installs it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../helpers/test-server.ts';
import { Chromium, findChromium } from './cdp.ts';
import type { Tab } from './cdp.ts';
import { deliver, mailServer, serverCa, startTestWebmail } from './helpers.ts';

const SCREENSHOTS = join(tmpdir(), 'jjordan-webmail-screenshots');
const chromium = findChromium();

test('in headless Chromium: log in, read, send, and an HTML mail whose script never runs', { skip: chromium ? false : 'Chromium is not installed (apt-get install chromium; .ci/run does it)', timeout: 120_000 }, async (t) => {
  // A server of ours that the mail's script and image would call: every request is written down.
  const probeHits: string[] = [];
  const probe = createServer((req, res) => {
    probeHits.push(req.url ?? '');
    if (req.url === '/control') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(`<script>fetch("/script-ran?from=control")</script>control`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'image/gif' });
    res.end(Buffer.from('R0lGODlhAQABAAAAACw=', 'base64'));
  });
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    probe.close(() => resolve());
    probe.closeAllConnections();
  }));
  const probeUrl = `http://127.0.0.1:${(probe.address() as { port: number }).port}`;

  const server = await mailServer(t);
  await deliver(server, 'From: Ana Example <ana@localhost>\r\nTo: jjordan@localhost\r\nSubject: Lunch on Friday?\r\n\r\nHi!\r\n\r\nShall we have lunch on Friday? The menu: https://example.org/menu\r\n\r\nAna\r\n');
  await deliver(server, [
    'From: Newsletter <news@example.net>',
    'To: jjordan@localhost',
    'Subject: HTML with a script',
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<h1 style="color:#0b5cad">Our news</h1>',
    `<script>fetch("${probeUrl}/script-ran?from=mail"); parent.document.title = "pwned"</script>`,
    `<img src="${probeUrl}/remote-image.gif" alt="remote image" width="40" height="40">`,
    `<img src=x onerror="fetch('${probeUrl}/script-ran?from=onerror')">`,
    '<p>Read more on our site.</p>',
    '',
  ].join('\r\n'));
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  await deliver(server, [
    'From: Ana Example <ana@localhost>',
    'Subject: HTML with a logo',
    'MIME-Version: 1.0',
    'Content-Type: multipart/related; boundary="rel"',
    '',
    '--rel',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p>Our logo: <img src="cid:logo@example.net" alt="logo" width="40" height="40"></p>',
    '--rel',
    'Content-Type: image/png; name="logo.png"',
    'Content-ID: <logo@example.net>',
    'Content-Transfer-Encoding: base64',
    '',
    png,
    '--rel--',
    '',
  ].join('\r\n'));
  const webmail = await startTestWebmail(t, server);
  const spki = createHash('sha256').update(new X509Certificate(await serverCa(server)).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  const browser = await Chromium.launch(chromium!, spki);
  t.after(() => browser.close());
  const tab = await browser.newTab();
  const base = `https://localhost:${webmail.port}`;
  await mkdir(SCREENSHOTS, { recursive: true });
  const shoot = async (name: string) => writeFile(join(SCREENSHOTS, `${name}.png`), await tab.screenshot());
  const text = (page: Tab) => page.evaluate<string>('document.body.innerText');

  // Log in with the keyboard: type, Tab to the password, Enter.
  await tab.goto(`${base}/login`);
  assert.equal(await tab.evaluate('document.title'), 'Log in - Webmail');
  await shoot('1-login');
  await tab.type('#username', 'jjordan');
  await tab.press('Tab');
  await tab.send('Input.insertText', { text: 'secret' });
  await tab.loading(() => tab.press('Enter'));
  assert.equal(await tab.evaluate('location.pathname'), '/mail', await text(tab));
  assert.match(await text(tab), /Lunch on Friday\?/);
  assert.equal(await tab.evaluate('document.cookie'), '', 'the session cookie is HttpOnly: no script can read it');
  await shoot('2-list');
  await tab.send('Emulation.setDeviceMetricsOverride', { width: 390, height: 844, deviceScaleFactor: 2, mobile: true });
  await tab.goto(`${base}/mail`);
  await shoot('2-list-phone');
  await tab.send('Emulation.clearDeviceMetricsOverride');

  // Open the plain message by its link.
  await tab.loading(() => tab.evaluate(`[...document.querySelectorAll('td.subject a')].find((a) => a.textContent === 'Lunch on Friday?').click()`));
  assert.match(await text(tab), /Shall we have lunch on Friday\?/);
  assert.equal(await tab.evaluate(`document.querySelector('.body-text a').href`), 'https://example.org/menu');
  await shoot('3-message');

  // The HTML mail: shown, its script and image held back.
  await tab.goto(`${base}/mail`);
  await tab.loading(() => tab.evaluate(`[...document.querySelectorAll('td.subject a')].find((a) => a.textContent === 'HTML with a script').click()`));
  assert.equal(await tab.evaluate('document.title'), 'HTML with a script - Webmail', 'the script did not reach our page');
  const frameText = await tab.evaluate<string | null>(`(() => { try { return document.querySelector('iframe.mail').contentDocument.body.innerText } catch (e) { return null } })()`);
  assert.equal(frameText, null, 'the frame is another origin: our page cannot look in, and neither can it look out');
  await shoot('4-html-message');
  assert.equal(probeHits.length, 0, `no script ran and no remote image loaded: ${probeHits.join(', ')}`);

  // The reader asks for remote images: the image loads; the scripts still do not run.
  await tab.loading(() => tab.evaluate(`[...document.querySelectorAll('a')].find((a) => a.textContent.startsWith('Show remote images')).click()`));
  await eventually(() => probeHits.includes('/remote-image.gif'), 'the remote image, once asked for');
  assert.ok(!probeHits.some((hit) => hit.startsWith('/script-ran')), `no script ran: ${probeHits.join(', ')}`);
  await shoot('5-html-message-images');

  // The same script in a page of its own does run: the probe would have seen it.
  const control = await browser.newTab();
  await control.goto(`${probeUrl}/control`);
  await eventually(() => probeHits.includes('/script-ran?from=control'), 'the control script');

  // An inline (cid:) image: the sandboxed frame loads it from the webmail, as an image. The
  // frame may run in a process of its own, so the webmail itself notes what it served.
  const served: string[] = [];
  const handle = webmail.app.handle.bind(webmail.app);
  webmail.app.handle = async (req, res) => {
    await handle(req, res);
    served.push(`${res.statusCode} ${String(res.getHeader('content-type'))} ${req.url}`);
  };
  await tab.goto(`${base}/mail`);
  await tab.loading(() => tab.evaluate(`[...document.querySelectorAll('td.subject a')].find((a) => a.textContent === 'HTML with a logo').click()`));
  await eventually(() => served.some((line) => line.includes('/message/inline')), 'a request for the inline image');
  assert.ok(served.some((line) => /^200 image\/png \/message\/inline\?/.test(line)), `the frame got the image, not the login page: ${served.join(', ')}`);
  await shoot('5b-inline-image');

  // Send a message: type into the form and press the Send button.
  await tab.goto(`${base}/compose`);
  await tab.type('#to', 'Ana <ana@localhost>');
  await tab.type('#subject', 'Sent from Chromium');
  await tab.type('#text', 'Typed in a real browser.');
  await shoot('6-compose');
  await tab.loading(() => tab.evaluate(`document.querySelector('button[value=send]').click()`));
  assert.match(await text(tab), /Message sent; a copy is in Sent\./);
  await eventually(async () => (await server.messages('ana')).length === 1, 'the message in ana\'s INBOX');
  assert.match((await server.messages('ana'))[0].content.toString(), /^Subject: Sent from Chromium$/m);
  t.diagnostic(`screenshots: ${SCREENSHOTS}`);
  console.log(`webmail screenshots saved in ${SCREENSHOTS}`);
});
