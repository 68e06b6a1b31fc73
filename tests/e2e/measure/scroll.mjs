// Measures scrolling a very long conversation in the real window (scripts/measure-desktop.sh
// prepares the profile and runs this with the release build). The passphrase profile at
// SOTTO_MEASURE_PROFILE is unlocked through the UI and the conversation with
// SOTTO_MEASURE_CONTACT opened. Then:
//  1. smoothness: once SOTTO_MEASURE_SMOOTH_ROWS messages are loaded, the list is scrolled up
//     through them from the newest at a steady 150 px a frame (a fast wheel or fling) and at
//     2000 px a frame (a scrollbar drag), never reaching the top, so no page load is waited
//     for; the frame intervals seen by requestAnimationFrame are printed;
//  2. the whole way: from the newest message to the oldest by SOTTO_MEASURE_STEP_PX a frame,
//     loading older pages as the UI does when a person scrolls up; prints how long it took and
//     its frame intervals (frames spent at the top waiting for a page included).
//
// The window paints the way the product does on this machine (SOTTO_WEBVIEW_ACCELERATION as
// given, by default unset: direct painting without a GPU, src-tauri/src/rendering.rs), not the
// composited mode the e2e suite forces for WebDriver screenshots; the screenshot here is taken
// from the X display instead.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { artifactsDir, launchApp, startDisplay } from "../lib/harness.mjs";

const profileDir = process.env.SOTTO_MEASURE_PROFILE;
const passphrase = process.env.SOTTO_PASSPHRASE;
const contact = process.env.SOTTO_MEASURE_CONTACT ?? "bob";
const step = Number(process.env.SOTTO_MEASURE_STEP_PX ?? 2000);
const limitMs = Number(process.env.SOTTO_MEASURE_LIMIT_MS ?? 600_000);
const smoothRows = Number(process.env.SOTTO_MEASURE_SMOOTH_ROWS ?? 5000);
if (!profileDir || !passphrase) {
  console.error("set SOTTO_MEASURE_PROFILE and SOTTO_PASSPHRASE");
  process.exit(2);
}

const percentile = (sorted, p) =>
  sorted[
    Math.min(
      sorted.length - 1,
      Math.max(0, Math.ceil((p / 100) * sorted.length) - 1),
    )
  ];

const display = await startDisplay();
const app = await launchApp({
  display: display.display,
  profileDir,
  name: "measure-scroll",
  env: {
    SOTTO_WEBVIEW_ACCELERATION: process.env.SOTTO_WEBVIEW_ACCELERATION ?? "",
  },
});
const screenshot = (step) =>
  execFileSync("import", [
    "-display",
    display.display,
    "-window",
    "root",
    join(artifactsDir, `measure-scroll-${step}.png`),
  ]);
try {
  const { browser } = app;
  const unlock = await browser.$('[data-testid="unlock-passphrase"]');
  await unlock.waitForDisplayed({ timeout: 30_000 });
  await unlock.setValue(passphrase);
  await browser.$('[data-testid="unlock-submit"]').click();
  const conversation = await browser.$(
    `[data-testid="conversation-${contact}"]`,
  );
  await conversation.waitForDisplayed({ timeout: 30_000 });
  const openedAt = Date.now();
  await conversation.click();
  await browser
    .$('[data-testid="message"]')
    .waitForDisplayed({ timeout: 30_000 });
  const openMs = Date.now() - openedAt;
  screenshot("newest");

  // Like the whole-way loop below, this runs in the page and is polled for.
  await browser.execute((rowsWanted) => {
    window.__sottoSmooth = null;
    const list = document.querySelector('[data-testid="message-list"]');
    const loaded = () =>
      Number(
        document
          .querySelector('[role="listitem"]')
          ?.getAttribute("aria-setsize") ?? 0,
      );
    const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
    const run = (stepPx) =>
      new Promise((res) => {
        const deltas = [];
        let last = performance.now();
        function frame(now) {
          deltas.push(now - last);
          last = now;
          if (list.scrollTop - stepPx < 4000 || deltas.length > 1500)
            return res(deltas.slice(1));
          list.scrollTop -= stepPx;
          requestAnimationFrame(frame);
        }
        requestAnimationFrame(frame);
      });
    (async () => {
      const t0 = performance.now();
      while (loaded() < rowsWanted && performance.now() - t0 < 120_000) {
        list.scrollTop = 0;
        await sleep(50);
      }
      const out = { rows: loaded() };
      for (const stepPx of [150, 2000]) {
        list.scrollTop = list.scrollHeight;
        await sleep(1000);
        out[stepPx] = await run(stepPx);
      }
      window.__sottoSmooth = out;
    })();
  }, smoothRows);
  let smooth = null;
  while (!smooth) {
    await new Promise((r) => setTimeout(r, 2000));
    smooth = await browser.execute(() => window.__sottoSmooth);
  }

  // The loop runs in the page on its own; the script only polls for its result, so no single
  // WebDriver call has to last as long as the whole scroll.
  await browser.execute(
    (stepPx, limit) => {
      const list = document.querySelector('[data-testid="message-list"]');
      list.scrollTop = list.scrollHeight;
      const deltas = [];
      const t0 = performance.now();
      let last = t0;
      let topSince = null;
      const oldestShown = () =>
        Math.min(
          ...[...document.querySelectorAll('[data-testid="message"]')].map(
            (m) => Number(m.getAttribute("data-message-id")),
          ),
        );
      const finish = (now, timedOut) => {
        window.__sottoScroll = {
          deltas,
          ms: now - t0,
          oldest: oldestShown(),
          timedOut,
        };
      };
      function frame(now) {
        deltas.push(now - last);
        last = now;
        list.scrollTop = Math.max(0, list.scrollTop - stepPx);
        const loading = document.querySelector(".messages .loading") !== null;
        if (list.scrollTop === 0 && !loading) {
          topSince ??= now;
          // At the top for a second with nothing loading: the oldest page is in.
          if (now - topSince > 1000) return finish(now, false);
        } else {
          topSince = null;
        }
        if (now - t0 > limit) return finish(now, true);
        requestAnimationFrame(frame);
      }
      window.__sottoScroll = null;
      requestAnimationFrame(frame);
    },
    step,
    limitMs,
  );
  let result = null;
  while (!result) {
    await new Promise((r) => setTimeout(r, 2000));
    result = await browser.execute(() => window.__sottoScroll);
  }
  screenshot("oldest");

  const stats = (deltas) => {
    const d = deltas.slice().sort((a, b) => a - b);
    const over = (ms) => d.filter((x) => x > ms).length;
    return (
      `frames: ${d.length}; interval p50 ${percentile(d, 50).toFixed(1)} ms, p95 ` +
      `${percentile(d, 95).toFixed(1)} ms, p99 ${percentile(d, 99).toFixed(1)} ms, max ` +
      `${d[d.length - 1].toFixed(1)} ms; over 50 ms: ${over(50)}, over 100 ms: ${over(100)}`
    );
  };
  console.log(`conversation opened (newest page shown) in ${openMs} ms`);
  for (const stepPx of [150, 2000]) {
    console.log(
      `smooth scroll through ${smooth.rows} loaded messages at ${stepPx} px per frame: ${stats(smooth[stepPx])}`,
    );
  }
  console.log(
    `scrolled to the oldest message (id ${result.oldest}) in ${(result.ms / 1000).toFixed(1)} s` +
      `${result.timedOut ? " (stopped at the time limit)" : ""}, ${step} px per frame`,
  );
  console.log(`the whole way: ${stats(result.deltas.slice(1))}`);
} finally {
  await app.close();
  await display.close();
}
