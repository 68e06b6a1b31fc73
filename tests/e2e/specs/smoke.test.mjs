// The desktop smoke test: the real window starts, and what it shows came from Rust.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { invoke, launchApp, newProfileDir, repoRoot, startDisplay } from '../lib/harness.mjs';

const cargoVersion = readFileSync(join(repoRoot, 'Cargo.toml'), 'utf8').match(
  /\[workspace\.package\][^[]*?version\s*=\s*"([^"]+)"/,
)[1];

let display;
before(async () => {
  display = await startDisplay();
});
after(async () => {
  await display?.close();
});

test('the window shows the name and the version fetched from Rust', async () => {
  const app = await launchApp({ display: display.display, profileDir: newProfileDir('smoke') });
  try {
    const { browser } = app;
    const version = await browser.$('[data-testid="app-version"]');
    await version.waitForDisplayed({ timeout: 20_000 });
    assert.equal(await version.getText(), `Version ${cargoVersion}`);
    assert.equal(await browser.$('[data-testid="app-name"]').getText(), 'Sotto');
    assert.equal(await browser.getTitle(), 'Sotto');
    await app.screenshot('smoke-first-screen');
  } finally {
    await app.close();
  }
});

test('without a GPU the window paints directly and works', async () => {
  // No override: the app's own choice for this machine (no DRM render node under Xvfb).
  const app = await launchApp({
    display: display.display,
    profileDir: newProfileDir('direct-paint'),
    env: { SOTTO_WEBVIEW_ACCELERATION: '' },
  });
  try {
    const username = await app.browser.$('[data-testid="onboarding-username"]');
    await username.waitForDisplayed({ timeout: 20_000 });
    await username.setValue('paints_directly');
    assert.equal(await username.getValue(), 'paints_directly');
  } finally {
    await app.close();
  }
});

test('the content security policy blocks loads the app did not bundle', async () => {
  const app = await launchApp({ display: display.display, profileDir: newProfileDir('csp') });
  try {
    await app.browser.$('[data-testid="app-version"]').waitForDisplayed({ timeout: 20_000 });
    const violated = await app.browser.executeAsync((done) => {
      document.addEventListener('securitypolicyviolation', (e) => done(e.violatedDirective));
      // Loopback only: if the policy were broken this would reach nothing at all.
      fetch('http://127.0.0.1:9/').catch(() => undefined);
      setTimeout(() => done('no violation'), 5000);
    });
    assert.match(violated, /^connect-src/);
  } finally {
    await app.close();
  }
});

test('two instances run side by side, each on its own profile folder', async () => {
  const dirs = [newProfileDir('alice'), newProfileDir('bob')];
  const apps = await Promise.all(
    dirs.map((profileDir, i) =>
      launchApp({ display: display.display, profileDir, name: i ? 'bob' : 'alice' }),
    ),
  );
  try {
    const infos = await Promise.all(apps.map((app) => invoke(app.browser, 'app_info')));
    for (const [i, info] of infos.entries()) {
      assert.equal(info.ok, true, info.error);
      assert.equal(info.value.profileDir, dirs[i]);
      assert.equal(info.value.version, cargoVersion);
    }
  } finally {
    await Promise.all(apps.map((app) => app.close()));
  }
});
