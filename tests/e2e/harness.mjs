// What every browser suite shares: where authhost and chromium are, free ports, starting
// authhost from a configuration and waiting until it answers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
export const BIN = process.env.AUTHHOST_BIN || path.join(root, 'target', 'debug', 'authhost');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Fails loudly when chromium or the authhost binary is missing: nothing is skipped. */
export function requireComponents() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  if (!fs.existsSync(BIN)) throw new Error(`authhost binary not found at ${BIN} (cargo build)`);
}

/** Starts authhost with the configuration file `config` (the shipped plugins on its path) and
 * resolves once `/healthz` at `base` answers. */
export async function startAuthhost(config, base) {
  const binDir = path.dirname(BIN);
  const child = spawn(BIN, ['--config', config], {
    env: { ...process.env, AUTHHOST_PLUGIN_PATH: `${path.join(binDir, 'deps')}:${binDir}` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* not yet */ }
    if (child.exitCode !== null || i > 100) throw new Error(`authhost did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}
