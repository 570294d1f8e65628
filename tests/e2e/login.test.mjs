// End-to-end login: a real browser (Debian's chromium, driven by playwright-core) goes from an
// app page through authhost's `check`, the login URL, a real OpenID provider's login and consent
// pages and authhost's callback, back to the app with `jwt=`; authhost built from this checkout.
// Nothing is skipped: a missing chromium or authhost binary fails the suite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startIdp } from './idp.mjs';
import { ARGS, BIN, CHROMIUM, freePort, requireComponents, startAuthhost } from './harness.mjs';

let tmp, idp, app, authhost, AUTH, APP, hooksFile;

before(async () => {
  requireComponents();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'authhost-e2e-'));
  const [authPort, idpPort, appPort] = [await freePort(), await freePort(), await freePort()];
  AUTH = `http://127.0.0.1:${authPort}`;
  APP = `http://127.0.0.1:${appPort}`;
  const callback = `${AUTH}/auth/oauth_callback`;
  idp = await startIdp({
    port: idpPort,
    clients: [
      { client_id: 'authhost-myidp', client_secret: 'secret-myidp', redirect_uris: [callback], grant_types: ['authorization_code'], response_types: ['code'] },
      { client_id: 'authhost-google', client_secret: 'secret-google', redirect_uris: [callback], grant_types: ['authorization_code'], response_types: ['code'] },
    ],
  });

  // The app: a page that asks authhost how to log in and follows the URL; a landing page.
  app = http.createServer((req, res) => {
    const url = new URL(req.url, APP);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    if (url.pathname === '/app') {
      const provider = url.searchParams.get('provider');
      res.end(`<!doctype html><title>app</title><p>logging in</p><script>
        fetch(${JSON.stringify(AUTH)} + '/auth/check?next=' + encodeURIComponent(${JSON.stringify(APP + '/landing')}), { credentials: 'include' })
          .then((r) => r.json())
          .then((j) => { location.href = j.providers[${JSON.stringify(provider)}].url; });
      </script>`);
    } else if (url.pathname === '/frame') {
      // A page of another site that tries to frame the dev login.
      res.end(`<!doctype html><title>framer</title><iframe id="f" src="${AUTH}/auth/login/dev"></iframe>`);
    } else {
      res.end('<!doctype html><title>landing</title><h1>landed</h1>');
    }
  });
  await new Promise((resolve) => app.listen(appPort, '127.0.0.1', resolve));

  execFileSync(BIN, ['keygen', '--out', tmp]);
  hooksFile = path.join(tmp, 'hooks.jsonl');
  const config = path.join(tmp, 'config.toml');
  fs.writeFileSync(config, `
[server]
listen = "127.0.0.1:${authPort}"
external_address = "${AUTH}"
data_dir = "${tmp}"
log_format = "json"
[database]
url = "sqlite://${tmp}/e2e.db?mode=rwc"
[keys]
private_key_file = "${tmp}/private.pem"
public_key_file = "${tmp}/public.pem"
[redirects]
allowed = ["${APP}/"]
[cors]
allowed_origins = ["${APP}"]
[plugins]
services = "example:sample_permission_provider"
extensions = "sample_extension"
[plugins.config.sample_extension]
path = "${hooksFile}"
[providers.myidp]
kind = "oidc"
issuer = "${idp.issuer}"
client_id = "authhost-myidp"
client_secret = "secret-myidp"
[providers.google]
issuer = "${idp.issuer}"
client_id = "authhost-google"
client_secret = "secret-google"
[providers.dev]
enabled = true
`);
  authhost = await startAuthhost(config, AUTH);
});

after(async () => {
  authhost?.kill('SIGTERM');
  await idp?.close();
  await new Promise((resolve) => (app ? app.close(resolve) : resolve()));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** One login in a fresh browser profile; resolves to the landing URL. */
async function browserLogin(provider, login, { deny = false } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'authhost-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const page = await context.newPage();
    await page.goto(`${APP}/app?provider=${provider}`);
    await page.waitForURL(/\/interaction\//, { timeout: 15000 });
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
    await page.waitForSelector('button:has-text("Continue")', { timeout: 15000 });
    if (deny) {
      await page.click('a:has-text("Cancel")');
    } else {
      await page.click('button:has-text("Continue")');
    }
    await page.waitForURL((u) => u.toString().startsWith(`${APP}/landing`), { timeout: 15000 });
    assert.equal(await page.textContent('h1'), 'landed');
    return new URL(page.url());
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function check(jwt) {
  return (await fetch(`${AUTH}/auth/check?jwt=${encodeURIComponent(jwt)}`)).json();
}

function hooks() {
  if (!fs.existsSync(hooksFile)) return [];
  return fs.readFileSync(hooksFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('logs in through an OpenID provider in a real browser; a second login is not a new user', async () => {
  const landed = await browserLogin('myidp', 'alice');
  const jwt = landed.searchParams.get('jwt');
  assert.ok(jwt, `no jwt in ${landed}`);
  assert.equal(landed.searchParams.get('error'), null);
  const me = await check(jwt);
  assert.equal(me.authenticated, true);
  assert.equal(me.profile.email, 'alice@example.org');
  assert.equal(me.profile.provider_id, 'myidp:alice');
  assert.equal(me.profile.name, 'User alice');
  assert.equal(me.profile.avatar_url, 'https://img.example/alice.png');
  assert.deepEqual(hooks().map((h) => h.hook), ['on_new_user', 'on_user_login']);

  const again = await browserLogin('myidp', 'alice');
  const me2 = await check(again.searchParams.get('jwt'));
  assert.equal(me2.profile.id, me.profile.id);
  assert.deepEqual(hooks().map((h) => h.hook), ['on_new_user', 'on_user_login', 'on_user_login']);

  // The token trades for a permission token, as a service would do next.
  const auth = await (await fetch(`${AUTH}/auth/authorize?service=example`, { headers: { 'auth-token': jwt } })).json();
  assert.deepEqual(auth.permissions, { 'provider-token': `example-${me.profile.id}` });
});

test('denial at the consent page lands on next with error=access_denied', async () => {
  const before = hooks().length;
  const landed = await browserLogin('myidp', 'bob', { deny: true });
  assert.equal(landed.searchParams.get('error'), 'access_denied');
  assert.equal(landed.searchParams.get('jwt'), null);
  assert.equal(hooks().length, before, 'no hook fired, no user created');
});

test('an unverified e-mail is refused and creates no user', async () => {
  const before = hooks().length;
  const landed = await browserLogin('myidp', 'unverified-carol');
  assert.equal(landed.searchParams.get('error'), 'unverified_email');
  assert.equal(landed.searchParams.get('jwt'), null);
  assert.equal(hooks().length, before);
  const resolved = await (await fetch(`${AUTH}/auth/check?jwt=x`)).json();
  assert.equal(resolved.authenticated, false);
});

test('google, with its issuer pointed at the same provider', async () => {
  const landed = await browserLogin('google', 'dave');
  const me = await check(landed.searchParams.get('jwt'));
  assert.equal(me.authenticated, true);
  assert.equal(me.profile.provider_id, 'google:dave');
  assert.equal(me.profile.email, 'dave@example.org');
});

test('a callback URL opened in another browser logs nobody in; the browser that started the login finishes it', async () => {
  const profiles = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'authhost-e2e-profile-')));
  const [first, second] = await Promise.all(profiles.map((p) =>
    chromium.launchPersistentContext(p, { executablePath: CHROMIUM, headless: true, args: ARGS })));
  try {
    // The first browser logs in upstream, but its way back to authhost is held: the URL is
    // what an attacker would pass on.
    const page = await first.newPage();
    // Redirects are followed inside the browser, out of reach of routing, so the provider's
    // redirect chain after the consent is walked here, in the same browser's cookie jar, and
    // stopped at the redirect to the callback.
    let callbackUrl;
    const idpBase = idp.issuer.replace(/\/$/, '');
    const idpRoutes = `${idpBase}/**`;
    await page.route(idpRoutes, async (route) => {
      let response = await route.fetch({ maxRedirects: 0 });
      let location = new URL(response.headers().location || '/', route.request().url()).toString();
      while (response.status() >= 300 && response.status() < 400 && location.startsWith(idpBase)) {
        response = await page.request.get(location, { maxRedirects: 0 });
        location = new URL(response.headers().location || '/', location).toString();
      }
      if (response.status() >= 300 && response.status() < 400 && location.startsWith(`${AUTH}/auth/oauth_callback`)) {
        callbackUrl = location;
        await route.abort();
      } else {
        await route.fulfill({ response });
      }
    });
    await page.goto(`${APP}/app?provider=myidp`);
    await page.waitForURL(/\/interaction\//, { timeout: 15000 });
    await page.fill('input[name=login]', 'erin');
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
    await page.waitForSelector('button:has-text("Continue")', { timeout: 15000 });
    await page.click('button:has-text("Continue")');
    for (let i = 0; !callbackUrl && i < 150; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(callbackUrl, 'the callback was not reached');

    // The other browser holds no login cookie for this state: a JSON refusal, no token, and
    // it stays on authhost (without the cookie there is no `next` to go back to).
    const other = await second.newPage();
    const refused = await other.goto(callbackUrl);
    assert.equal(refused.status(), 400);
    assert.match(JSON.parse(await refused.text()).error, /start the login again/);
    assert.ok(other.url().startsWith(`${AUTH}/auth/oauth_callback`), other.url());

    await page.unroute(idpRoutes);
    await page.goto(callbackUrl);
    await page.waitForURL((u) => u.toString().startsWith(`${APP}/landing`), { timeout: 15000 });
    const landed = new URL(page.url());
    const me = await check(landed.searchParams.get('jwt'));
    assert.equal(me.authenticated, true);
    assert.equal(me.profile.email, 'erin@example.org');
  } finally {
    await Promise.all([first.close(), second.close()]);
    for (const p of profiles) fs.rmSync(p, { recursive: true, force: true });
  }
});

test('two logins at once in one browser, two tabs and two upstreams, both finish', async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'authhost-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    // Both tabs start their login (each gets its own sealed cookie) before either finishes.
    const tabs = [];
    for (const [provider, login] of [['myidp', 'frank'], ['google', 'grace']]) {
      const page = await context.newPage();
      await page.goto(`${APP}/app?provider=${provider}`);
      await page.waitForURL(/\/interaction\//, { timeout: 15000 });
      tabs.push({ page, provider, login });
    }
    const cookies = (await context.cookies(`${AUTH}/auth/oauth_callback`)).filter((c) => c.name.startsWith('authhost_login_'));
    assert.equal(cookies.length, 2, 'one login cookie per login');
    for (const c of cookies) {
      assert.equal(c.path, '/auth/oauth_callback');
      assert.equal(c.httpOnly, true);
      assert.equal(c.sameSite, 'Lax');
    }
    // Finished in the other order.
    for (const { page, provider, login } of tabs.reverse()) {
      await page.fill('input[name=login]', login);
      await page.fill('input[name=password]', 'any password');
      await page.click('button[type=submit]');
      await page.waitForSelector('button:has-text("Continue")', { timeout: 15000 });
      await page.click('button:has-text("Continue")');
      await page.waitForURL((u) => u.toString().startsWith(`${APP}/landing`), { timeout: 15000 });
      const me = await check(new URL(page.url()).searchParams.get('jwt'));
      assert.equal(me.authenticated, true, `${provider}: ${page.url()}`);
      assert.equal(me.profile.provider_id, `${provider}:${login}`);
    }
    const left = (await context.cookies(`${AUTH}/auth/oauth_callback`)).filter((c) => c.name.startsWith('authhost_login_'));
    assert.deepEqual(left, [], 'each login cookie is cleared when used');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});

test('the dev login page works under its Content-Security-Policy and cannot be framed', async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'authhost-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const page = await context.newPage();
    const refused = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused/i.test(m.text())) refused.push(m.text()); });
    const response = await page.goto(`${AUTH}/auth/login/dev?next=${encodeURIComponent(`${APP}/landing`)}`);
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /frame-ancestors 'none'/);
    // The page's own style is allowed by its hash: the rule for .warn applies.
    const border = await page.$eval('.warn', (e) => getComputedStyle(e).borderTopStyle);
    assert.equal(border, 'solid');
    // The form posts to authhost and its redirect to another origin (next) is followed:
    // form-action names next's origin beside 'self'.
    await page.fill('input[name=email]', 'frank@example.org');
    await page.click('button[type=submit]');
    await page.waitForURL((u) => u.toString().startsWith(`${APP}/landing`), { timeout: 15000 });
    const me = await check(new URL(page.url()).searchParams.get('jwt'));
    assert.equal(me.profile.email, 'frank@example.org');
    assert.deepEqual(refused, [], 'the browser refused something under the policy');

    // Framed by another site: the browser shows nothing of it.
    const framer = await context.newPage();
    await framer.goto(`${APP}/frame`);
    await framer.waitForTimeout(500);
    const frame = framer.frames().find((f) => f !== framer.mainFrame());
    assert.ok(frame, 'the framing page has its frame');
    // The browser put its own error page in the frame, not authhost's form.
    const inside = await frame.evaluate(() => document.querySelector('input[name=email]') !== null);
    assert.equal(inside, false, 'the dev login form rendered inside another site\'s frame');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});
