// The camera permission handler, outside WebDriver. A WebDriver session grants media capture
// by itself and never asks the app, so this runs the app's own handler (camera::install) in a
// real WebKitGTK window with no driver attached (src-tauri/examples/camera_probe.rs), with
// WebKit's mock capture devices standing in for a camera and a microphone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startDisplay } from '../lib/harness.mjs';

const probe =
  process.env.SOTTO_CAMERA_PROBE_BIN ?? join(repoRoot, 'target/debug/examples/camera_probe');

let display;
before(async () => {
  display = await startDisplay();
});
after(async () => {
  await display?.close();
});

function runProbe(args) {
  assert.ok(existsSync(probe), `the probe is not built at ${probe}`);
  return new Promise((resolve, reject) => {
    execFile(
      probe,
      args,
      { env: { ...process.env, DISPLAY: display.display }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stdout}\n${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

test('the app grants the camera alone, and denies the microphone', async () => {
  assert.equal(
    await runProbe([]),
    'camera-probe video=allowed audio=NotAllowedError both=NotAllowedError',
  );
});

test('without the handler WebKitGTK refuses the camera too', async () => {
  assert.equal(
    await runProbe(['--without-handler']),
    'camera-probe video=NotAllowedError audio=NotAllowedError both=NotAllowedError',
  );
});
