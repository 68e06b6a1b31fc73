// The README's default: "a relay on this computer". Two profiles choose it during onboarding;
// the first instance serves the real relay inside the app, the second uses that one, and they
// chat through it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { eventually, freePort, launchApp, newProfileDir, startDisplay } from '../lib/harness.mjs';

let display;
const apps = [];

before(async () => {
  display = await startDisplay();
});
after(async () => {
  for (const app of apps) await app.close().catch(() => undefined);
  await display?.close();
});

async function onboardEmbedded(app, username, passphrase) {
  const $ = (id) => app.browser.$(`[data-testid="${id}"]`);
  await (await $('onboarding-create-form')).waitForDisplayed({ timeout: 30_000 });
  await (await $('onboarding-username')).setValue(username);
  await (await $('onboarding-relay-embedded')).click();
  await (await $('onboarding-keystorage-passphrase')).click();
  await (await $('onboarding-passphrase')).setValue(passphrase);
  await (await $('onboarding-passphrase-confirm')).setValue(passphrase);
  await (await $('onboarding-create')).click();
  await (await $('main-window')).waitForDisplayed({ timeout: 30_000 });
}

test('two profiles chat through the relay embedded in the app', async () => {
  const env = {
    SOTTO_EMBEDDED_RELAY_LISTEN: `127.0.0.1:${await freePort()}`,
    SOTTO_EMBEDDED_RELAY_DIR: mkdtempSync(join(tmpdir(), 'sotto-e2e-embedded-')),
  };
  const dana = await launchApp({ display: display.display, profileDir: newProfileDir('dana'), env, name: 'dana' });
  apps.push(dana);
  await onboardEmbedded(dana, 'dana', 'dana passphrase for the embedded test');
  const eli = await launchApp({ display: display.display, profileDir: newProfileDir('eli'), env, name: 'eli' });
  apps.push(eli);
  await onboardEmbedded(eli, 'eli', 'eli passphrase for the embedded test');

  const $e = (id) => eli.browser.$(`[data-testid="${id}"]`);
  await (await $e('new-chat')).click();
  await (await $e('new-chat-username')).setValue('dana');
  await (await $e('new-chat-add')).click();
  await (await $e('conversation-dana')).waitForDisplayed({ timeout: 20_000 });
  await (await $e('conversation-dana')).click();
  await (await $e('composer')).setValue('through the relay on this computer');
  await eli.browser.keys('Enter');

  const request = await dana.browser.$('[data-testid="request-eli"]');
  await request.waitForDisplayed({ timeout: 20_000 });
  await request.click();
  await eventually('the message at dana', () =>
    dana.browser.execute(() =>
      [...document.querySelectorAll('[data-testid="message-text"]')].some(
        (m) => m.textContent.trim() === 'through the relay on this computer',
      ),
    ),
  );
  await dana.screenshot('embedded-relay');
});
