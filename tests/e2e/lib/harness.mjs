// Starts real Sotto desktop instances under Xvfb, each driven through its own tauri-driver
// (which spawns WebKitWebDriver), each on its own profile folder.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { remote } from 'webdriverio';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../..');
export const artifactsDir = join(repoRoot, 'tests/e2e/artifacts');
mkdirSync(artifactsDir, { recursive: true });

const appBinary = process.env.SOTTO_DESKTOP_BIN ?? join(repoRoot, 'target/debug/sotto-desktop');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A private X display for this test run; stopped with `close()`. */
export async function startDisplay() {
  for (let n = 90 + Math.floor(Math.random() * 100); ; n += 1) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    const xvfb = spawn('Xvfb', [`:${n}`, '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
      stdio: 'ignore',
    });
    let exited = false;
    xvfb.on('exit', () => (exited = true));
    await waitFor('Xvfb', () => exited || existsSync(`/tmp/.X11-unix/X${n}`), 10_000);
    if (exited) continue;
    return {
      display: `:${n}`,
      close: async () => {
        xvfb.kill('SIGTERM');
      },
    };
  }
}

/** A fresh empty profile folder under the system temp dir. */
export function newProfileDir(name) {
  return mkdtempSync(join(tmpdir(), `sotto-e2e-${name}-`));
}

/**
 * Starts one app instance on `profileDir` and returns a WebdriverIO browser bound to it.
 * Every instance gets its own tauri-driver on free ports, so instances run side by side.
 */
export async function launchApp({ display, profileDir, env = {}, name = 'app' }) {
  if (!existsSync(appBinary)) {
    throw new Error(`the desktop app is not built at ${appBinary} (cargo build -p sotto-desktop)`);
  }
  const port = await freePort();
  const nativePort = await freePort();
  const log = [];
  const driver = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    // Composited, as with a GPU: without one the app paints directly (src-tauri/src/rendering.rs),
    // and WebKitGTK's WebDriver screenshot of a window idle for a few seconds then never
    // returns, although the window itself keeps painting. smoke.test.mjs covers that path.
    env: {
      ...process.env,
      DISPLAY: display,
      SOTTO_PROFILE: profileDir,
      SOTTO_WEBVIEW_ACCELERATION: 'on',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  driver.stdout.on('data', (d) => log.push(d.toString()));
  driver.stderr.on('data', (d) => log.push(d.toString()));
  let driverExited = false;
  driver.on('exit', () => (driverExited = true));

  await waitFor(`tauri-driver for ${name}`, async () => {
    if (driverExited) throw new Error(`tauri-driver exited: ${log.join('')}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/status`);
      const body = await res.json();
      return body?.value?.ready === true;
    } catch {
      return false;
    }
  });

  const browser = await remote({
    hostname: '127.0.0.1',
    port,
    logLevel: 'error',
    connectionRetryCount: 0,
    capabilities: {
      browserName: 'wry',
      'wdio:enforceWebDriverClassic': true,
      'tauri:options': { application: appBinary },
    },
  });

  return {
    browser,
    name,
    profileDir,
    /** Saves a screenshot artefact named `<name>-<step>.png` and returns its path. */
    async screenshot(step) {
      const file = join(artifactsDir, `${name}-${step}.png`);
      // Let WebKit paint the latest DOM before capturing it.
      await browser.executeAsync((done) =>
        requestAnimationFrame(() => requestAnimationFrame(() => done())),
      );
      await browser.saveScreenshot(file);
      return file;
    },
    async close() {
      try {
        await browser.deleteSession();
      } finally {
        driver.kill('SIGTERM');
        await waitFor('tauri-driver to exit', () => driverExited, 10_000).catch(() =>
          driver.kill('SIGKILL'),
        );
      }
    },
  };
}

/** Calls one of the app's own Tauri commands from inside the page, as the UI would. */
export async function invoke(browser, command, args = {}) {
  return browser.executeAsync(
    (cmd, a, done) => {
      window.__TAURI_INTERNALS__
        .invoke(cmd, a)
        .then((value) => done({ ok: true, value }))
        .catch((error) => done({ ok: false, error: String(error) }));
    },
    command,
    args,
  );
}

/**
 * Starts the real relay binary on a free loopback port with its own data folder; resolves to
 * `{ url, close }` once it announced where it listens.
 */
export async function startRelay() {
  const bin = process.env.SOTTO_RELAY_BIN ?? join(dirname(appBinary), 'sotto-relay');
  if (!existsSync(bin)) throw new Error(`the relay is not built at ${bin}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'sotto-e2e-relay-'));
  const relay = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  relay.stderr.on('data', (d) => log.push(d.toString()));
  const url = await new Promise((resolveUrl, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${log.join('')}`)), 20_000);
    relay.stdout.on('data', (d) => {
      out += d.toString();
      const m = out.match(/listening on (ws:\/\/[^/\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    relay.on('exit', (code) => reject(new Error(`relay exited (${code}): ${log.join('')}`)));
  });
  return {
    url,
    dataDir,
    log,
    close: async () => {
      relay.kill('SIGTERM');
    },
  };
}

/** Waits until `check` (async, in the test) returns a truthy value, and returns it. */
export async function eventually(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(200);
  }
}

/** Runs axe-core in the page and returns the violations of impact serious or critical. */
export async function seriousA11yViolations(browser) {
  const { readFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await browser.execute(source);
  const result = await browser.executeAsync((done) => {
    window.axe
      .run(document, { resultTypes: ['violations'] })
      .then((r) =>
        done(
          r.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) })),
        ),
      )
      .catch((e) => done([{ id: 'axe-failed', impact: 'critical', nodes: [String(e)] }]));
  });
  return result;
}
