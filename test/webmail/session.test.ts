// The webmail's front door, over real HTTPS against the real mail server:
// login and logout, the session cookie's attributes, the headers on every
// response, CSRF refusals (a missing or wrong token, another site's
// origin), an expired session, and the login throttle by browser address.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csrfToken } from './browser.ts';
import { mailServer, startTestWebmail } from './helpers.ts';

test('log in, see the inbox, log out; the cookie is HttpOnly, Secure, SameSite=Strict and holds no credentials', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server);
  const browser = webmail.browser();
  assert.equal((await browser.get('/mail')).location, '/login', 'not logged in: to the login page');
  const form = await browser.get('/login');
  assert.equal(form.status, 200);
  assert.match(form.text, /<form method="post" action="\/login"/);
  const login = await browser.post('/login', { _csrf: csrfToken(form.text), username: 'jjordan', password: 'secret' });
  assert.equal(login.status, 303);
  assert.equal(login.location, '/mail');
  const setCookie = [login.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('__Host-webmail='))!;
  assert.match(setCookie, /; Path=\/; Secure; HttpOnly; SameSite=Strict/);
  assert.doesNotMatch(setCookie, /secret|jjordan/, 'the cookie is a random id');
  const inbox = await browser.get('/mail');
  assert.equal(inbox.status, 200);
  assert.match(inbox.text, /<h1 id="folder-title">Inbox/);
  assert.doesNotMatch(inbox.text, /secret/, 'the password is nowhere on the page');
  assert.ok(server.logLines.some((l) => /client-id .*forAddress=127\.0\.0\.1/.test(l)), 'ID x-originating-ip sent before LOGIN');

  const logout = await browser.post('/logout', { _csrf: csrfToken(inbox.text) });
  assert.equal(logout.location, '/login?bye=1');
  assert.equal(browser.cookies.has('__Host-webmail'), false, 'the cookie is deleted');
  assert.equal(webmail.app.sessions.size, 0);
  assert.equal(webmail.app.pool.openConnections, 0, 'its IMAP connection is closed');
});

test('every response carries the strict security headers', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  for (const path of ['/login', '/mail', '/folders', '/compose', '/style.css', '/nowhere', '/mail/config-v1.1.xml']) {
    const page = await browser.get(path);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.doesNotMatch(csp, /script-src/, `${path}: no script may run at all`);
    assert.equal(page.headers['x-content-type-options'], 'nosniff', path);
    assert.equal(page.headers['referrer-policy'], 'no-referrer', path);
    assert.equal(page.headers['x-frame-options'], 'DENY', path);
  }
});

test('a wrong password is refused on the form; the password never comes back in the page', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server);
  const browser = webmail.browser();
  const page = await browser.logIn('jjordan', 'not-the-password');
  assert.equal(page.status, 401);
  assert.match(page.text, /Wrong user name or password/);
  assert.doesNotMatch(page.text, /not-the-password/);
  assert.match(page.text, /value="jjordan"/, 'the user name is kept');
  assert.equal(webmail.app.sessions.size, 0);
});

test('CSRF: a POST without the token, with a wrong one, or from another site changes nothing', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const token = csrfToken((await browser.get('/folders')).text);

  const noToken = await browser.post('/folders/create', { name: 'Forged1' });
  assert.equal(noToken.status, 403);
  const wrongToken = await browser.post('/folders/create', { _csrf: 'x'.repeat(token.length), name: 'Forged2' });
  assert.equal(wrongToken.status, 403);
  const otherSite = await browser.post('/folders/create', { _csrf: token, name: 'Forged3' }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
  assert.equal(otherSite.status, 403);
  // A login form posted without its cookie's nonce (a forged login) is refused too.
  const forgedLogin = await webmail.browser().post('/login', { _csrf: 'abc', username: 'jjordan', password: 'secret' });
  assert.equal(forgedLogin.status, 403);
  // A multipart form whose first field is not the token is refused before any file is stored.
  const forgedSend = await browser.postMultipart('/compose', [['to', 'ana@localhost'], ['_csrf', token], ['action', 'send']], [['attachments', { filename: 'a.bin', contentType: 'application/octet-stream', content: Buffer.alloc(1000) }]]);
  assert.equal(forgedSend.status, 403);

  const folders = (await browser.get('/folders')).text;
  assert.doesNotMatch(folders, /Forged/);
  const real = await browser.post('/folders/create', { _csrf: token, name: 'Real' });
  assert.equal(real.status, 303, 'with the token it works: the refusals were the token');
  assert.match((await browser.get('/folders')).text, /Real/);
  assert.equal((await server.messages('ana')).length, 0, 'no mail was sent');
});

test('a session expires after its idle time and after its maximum age; its password and connection go with it', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server, { sessionIdleMinutes: 30, sessionHours: 12 });
  const browser = await webmail.loggedIn();
  const token = csrfToken((await browser.get('/mail')).text);
  webmail.advance(31 * 60_000);
  const expired = await browser.get('/mail');
  assert.equal(expired.status, 303);
  assert.equal(expired.location, '/login?expired=1');
  assert.match((await browser.get('/login?expired=1')).text, /Your session has ended/);
  const late = await browser.post('/folders/create', { _csrf: token, name: 'TooLate' });
  assert.equal(late.location, '/login', 'the old form does nothing after expiry');
  assert.equal(webmail.app.sessions.size, 0);
  assert.equal(webmail.app.pool.openConnections, 0);

  // Busy all day is not enough either: 12 hours is the most.
  const busy = await webmail.loggedIn();
  for (let step = 0; step < 28; step++) {
    webmail.advance(25 * 60_000); // 28 x 25 minutes: 11 h 40 min, never idle for 30
    assert.equal((await busy.get('/folders')).status, 200);
  }
  webmail.advance(25 * 60_000);
  assert.equal((await busy.get('/folders')).location, '/login?expired=1');
});

test('the mail server throttles failed logins by the browser\'s address, not the webmail\'s', async (t) => {
  // The throttle's clock stands still: every wait is the full 200 ms, however slowly this machine answers.
  const server = await mailServer(t, { throttle: { baseDelayMs: 200, maxDelayMs: 200, now: () => 0 } });
  const webmail = await startTestWebmail(t, server);
  // An attacker at 127.0.0.2 fails three times ...
  for (let i = 0; i < 3; i++) assert.equal((await webmail.browser('127.0.0.2').logIn('jjordan', 'guess')).status, 401);
  const authLines = () => server.logLines.filter((l) => / auth-(failed|delayed|ok)/.test(l));
  assert.equal(authLines().filter((l) => /auth-failed ip=127\.0\.0\.2\b/.test(l)).length, 3, authLines().join('\n'));
  assert.ok(authLines().some((l) => /auth-delayed ip=127\.0\.0\.2\b/.test(l)), 'the attacker is slowed down');
  // ... and a user at 127.0.0.3 logs in through the same webmail without waiting for the attacker's penalty.
  assert.equal((await webmail.browser('127.0.0.3').logIn('jjordan', 'secret')).status, 303);
  assert.equal(authLines().filter((l) => /ip=127\.0\.0\.(1|3)\b/.test(l)).length, 0, 'nothing counted against the webmail or the user');
});
