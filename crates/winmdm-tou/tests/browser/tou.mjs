// Drives Debian's chromium (playwright-core, no downloaded browser) through the ToU page
// served by the example server, for the FRX (OOBE) and MOSET (Settings) themes:
// computed colours, axe-core WCAG 2.x A/AA, CSP violations, keyboard-only Accept, the
// redirect back, and screenshots. Prints one JSON object; exits non-zero on a failure.
//
// usage: node tou.mjs <base-url> <bearer-token> <screenshot-dir>
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const [base, token, outDir] = process.argv.slice(2);
const crid = '34be581c-6ebd-49d6-a4e1-150eff4b7213';
fs.mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = { scenarios: {} };
let failed = false;
try {
  for (const host of ['FRX', 'MOSET']) {
    const context = await browser.newContext({
      extraHTTPHeaders: { Authorization: `Bearer ${token}`, 'CXH-HOST': host },
      viewport: { width: 1024, height: 768 },
    });
    const page = await context.newPage();
    const cspViolations = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
    });
    const redirect = `${base}/done`;
    const url = `${base}/TermsOfUse?redirect_uri=${encodeURIComponent(redirect)}` +
      `&client-request-id=${crid}&api-version=1.0`;
    const response = await page.goto(url);
    const r = { status: response.status(), cspViolations };
    const style = await page.evaluate(() => {
      const b = getComputedStyle(document.body);
      const a = document.querySelector('button[value="accept"]');
      const s = a ? getComputedStyle(a) : null;
      return {
        background: b.backgroundColor, color: b.color,
        acceptBackground: s && s.backgroundColor, acceptColor: s && s.color,
        lang: document.documentElement.lang,
        hasDecline: !!document.querySelector('button[value="decline"]'),
      };
    });
    Object.assign(r, style);
    // axe-core, evaluated through the DevTools protocol (the page's CSP stays on).
    await page.evaluate(axeSource);
    const axe = await page.evaluate(async () => {
      const res = await window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
      });
      return res.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    r.axeViolations = axe;
    await page.screenshot({ path: path.join(outDir, `tou-${host}.png`), fullPage: true });
    // A narrow (phone-sized) screenshot: the layout must not need horizontal scrolling.
    await page.setViewportSize({ width: 360, height: 740 });
    r.horizontalOverflow = await page.evaluate(
      () => document.documentElement.scrollWidth > document.documentElement.clientWidth);
    await page.screenshot({ path: path.join(outDir, `tou-${host}-narrow.png`), fullPage: true });
    await page.setViewportSize({ width: 1024, height: 768 });
    // Keyboard only: Tab to Accept, press Enter.
    let tabs = 0;
    for (; tabs < 12; tabs++) {
      await page.keyboard.press('Tab');
      const v = await page.evaluate(() => document.activeElement && document.activeElement.value);
      if (v === 'accept') break;
    }
    r.tabsToAccept = tabs + 1;
    await Promise.all([page.waitForURL(`${redirect}**`), page.keyboard.press('Enter')]);
    const landed = new URL(page.url());
    r.redirect = {
      path: landed.pathname,
      isAccepted: landed.searchParams.get('IsAccepted'),
      opaqueBlob: landed.searchParams.get('OpaqueBlob'),
      clientRequestId: landed.searchParams.get('client-request-id'),
      keys: [...landed.searchParams.keys()],
    };
    await page.screenshot({ path: path.join(outDir, `tou-${host}-after-accept.png`) });
    // History wiring: Back returns to the ToU page.
    await page.goBack();
    r.backUrlPath = new URL(page.url()).pathname;
    out.scenarios[host] = r;
    if (r.status !== 200 || axe.length > 0 || cspViolations.length > 0 ||
        r.redirect.isAccepted !== 'true' || r.horizontalOverflow) {
      failed = true;
    }
    await context.close();
  }
} catch (e) {
  out.error = String(e && e.stack || e);
  failed = true;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(failed ? 1 : 0);
