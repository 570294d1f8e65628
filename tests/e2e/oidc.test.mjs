// authhost as an OpenID Provider, with a certified relying party: two tiny apps use
// `openid-client` (panva, OpenID Certified) for discovery, PKCE, the code grant, ID-token
// validation (issuer, audience, nonce, RFC 9207 `iss`), userinfo and the end-session URL, and
// a real Chromium logs in through authhost's dev login and through the suite's real upstream
// OpenID provider. The second app logs in on the browser session alone; RP-initiated logout
// ends it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import { chromium } from 'playwright-core';
import { startIdp } from './idp.mjs';
import { ARGS, BIN, CHROMIUM, freePort, requireComponents, startAuthhost } from './harness.mjs';

let tmp, idp, authhost, AUTH, ISSUER, hooksFile, rpPorts;
const apps = [];

/** A relying party on loopback: `/login` starts the code flow, `/cb` finishes it and shows what
 * it learnt as JSON in the page, `/logout` goes to the end-session URL, `/bye` is the landing. */
async function startApp(clientId, port) {
  const base = `http://127.0.0.1:${port}`;
  const config = await oidc.discovery(new URL(ISSUER), clientId, undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
  const pending = new Map();
  let idToken;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, base);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    try {
      if (url.pathname === '/login') {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const nonce = oidc.randomNonce();
        pending.set(state, { verifier, nonce });
        const to = oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${base}/cb`,
          scope: 'openid email profile',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          nonce,
        });
        res.writeHead(302, { location: to.href }).end();
      } else if (url.pathname === '/cb') {
        const state = url.searchParams.get('state');
        const { verifier, nonce } = pending.get(state) ?? {};
        pending.delete(state);
        const tokens = await oidc.authorizationCodeGrant(config, url, {
          pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
        });
        const claims = tokens.claims();
        idToken = tokens.id_token;
        const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        const page = { claims, userinfo, access_token: tokens.access_token };
        res.end(`<!doctype html><title>in</title><pre id="out">${JSON.stringify(page).replace(/</g, '\\u003c')}</pre>`);
      } else if (url.pathname === '/logout') {
        const to = oidc.buildEndSessionUrl(config, {
          id_token_hint: idToken, post_logout_redirect_uri: `${base}/bye`, state: 'bye-1',
        });
        res.writeHead(302, { location: to.href }).end();
      } else {
        res.end('<!doctype html><title>bye</title><h1>bye</h1>');
      }
    } catch (e) {
      res.statusCode = 500;
      res.end(`<!doctype html><title>error</title><pre id="error">${String(e).replace(/</g, '&lt;')}</pre>`);
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const app = { base, close: () => new Promise((resolve) => server.close(resolve)) };
  apps.push(app);
  return app;
}

before(async () => {
  requireComponents();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'authhost-e2e-oidc-'));
  const [authPort, idpPort, rp1Port, rp2Port] = [await freePort(), await freePort(), await freePort(), await freePort()];
  AUTH = `http://127.0.0.1:${authPort}`;
  ISSUER = `${AUTH}/auth/`;
  idp = await startIdp({
    port: idpPort,
    clients: [{ client_id: 'authhost-myidp', client_secret: 'secret-myidp', redirect_uris: [`${AUTH}/auth/oauth_callback`], grant_types: ['authorization_code'], response_types: ['code'] }],
  });
  execFileSync(BIN, ['keygen', '--out', tmp]);
  hooksFile = path.join(tmp, 'hooks.jsonl');
  const config = path.join(tmp, 'config.toml');
  // The apps' ports are chosen now so their redirect URIs can be registered before they start.
  rpPorts = [rp1Port, rp2Port];
  fs.writeFileSync(config, `
[server]
listen = "127.0.0.1:${authPort}"
external_address = "${AUTH}"
data_dir = "${tmp}"
[database]
url = "sqlite://${tmp}/e2e.db?mode=rwc"
[keys]
private_key_file = "${tmp}/private.pem"
public_key_file = "${tmp}/public.pem"
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
[providers.dev]
enabled = true
[clients.rp1]
redirect_uris = ["http://127.0.0.1:${rp1Port}/cb"]
post_logout_redirect_uris = ["http://127.0.0.1:${rp1Port}/bye"]
audience = "example"
[clients.rp2]
redirect_uris = ["http://127.0.0.1:${rp2Port}/cb"]
`);
  authhost = await startAuthhost(config, AUTH);
});

after(async () => {
  authhost?.kill('SIGTERM');
  await idp?.close();
  for (const app of apps) await app.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function hooks() {
  if (!fs.existsSync(hooksFile)) return [];
  return fs.readFileSync(hooksFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function withBrowser(work) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'authhost-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    return await work(await context.newPage());
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** What the app's callback page learnt, or the app's error. */
async function landed(page, app) {
  await page.waitForURL((u) => u.toString().startsWith(`${app.base}/cb`), { timeout: 15000 });
  const error = await page.$('#error');
  if (error) assert.fail(`the relying party failed: ${await error.textContent()}`);
  return JSON.parse(await page.textContent('#out'));
}

test('two apps log in through the dev login with openid-client; the second needs no login; logout ends the session', async () => {
  const rp1 = await startApp('rp1', rpPorts[0]);
  const rp2 = await startApp('rp2', rpPorts[1]);
  await withBrowser(async (page) => {
    await page.goto(`${rp1.base}/login`);
    // Two login methods: the chooser page lists them.
    await page.click('a:has-text("Dev login")');
    await page.fill('input[name=email]', 'ola@example.org');
    await page.fill('input[name=name]', 'Ola');
    await page.click('button[type=submit]');
    const first = await landed(page, rp1);
    const id = crypto.createHash('md5').update('ola@example.org').digest('hex');
    assert.equal(first.claims.sub, id);
    assert.equal(first.claims.aud, 'rp1');
    assert.equal(first.claims.iss, ISSUER);
    assert.equal(first.claims.email, 'ola@example.org');
    assert.equal(first.claims.name, 'Ola');
    assert.equal(first.userinfo.email, 'ola@example.org');
    const [, payload] = first.access_token.split('.');
    const access = JSON.parse(Buffer.from(payload, 'base64url').toString());
    assert.deepEqual(access.permissions, { 'provider-token': `example-${id}` });
    const logins = hooks().filter((h) => h.hook === 'on_user_login').length;

    // The second app: straight back with a code, no page in between, no second login.
    const seen = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) seen.push(f.url()); });
    await page.goto(`${rp2.base}/login`);
    const second = await landed(page, rp2);
    assert.equal(second.claims.sub, id);
    assert.equal(second.claims.aud, 'rp2');
    assert.ok(!seen.some((u) => u.includes('/login/')), `no login page: ${seen.join(' → ')}`);
    assert.equal(hooks().filter((h) => h.hook === 'on_user_login').length, logins, 'on_user_login once per login, not per client');

    // RP-initiated logout from the first app ends the session for both.
    await page.goto(`${rp1.base}/logout`);
    await page.waitForURL((u) => u.toString().startsWith(`${rp1.base}/bye`), { timeout: 15000 });
    assert.equal(new URL(page.url()).searchParams.get('state'), 'bye-1');
    await page.goto(`${rp2.base}/login`);
    await page.waitForSelector('a:has-text("Dev login")', { timeout: 15000 });
  });
});

test('an app logs in through the real upstream OpenID provider', async () => {
  const rp2 = apps[1] ?? await startApp('rp2', rpPorts[1]);
  await withBrowser(async (page) => {
    await page.goto(`${rp2.base}/login`);
    await page.click('a:has-text("myidp")');
    await page.waitForURL(/\/interaction\//, { timeout: 15000 });
    await page.fill('input[name=login]', 'pia');
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
    await page.waitForSelector('button:has-text("Continue")', { timeout: 15000 });
    await page.click('button:has-text("Continue")');
    const got = await landed(page, rp2);
    assert.equal(got.claims.email, 'pia@example.org');
    assert.equal(got.claims.sub, crypto.createHash('md5').update('pia@example.org').digest('hex'));
    assert.equal(got.userinfo.name, 'User pia');
  });
});
