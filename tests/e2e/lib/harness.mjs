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

async function freePort() {
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
    env: { ...process.env, DISPLAY: display, SOTTO_PROFILE: profileDir, ...env },
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
