/**
 * The dashboard as a student meets it, in a real Chromium against real processes: send an
 * operation, kill its service and watch it go down while the requests queue up, bring it back
 * and watch the backlog drain and the tickets resolve. Screenshots go to test-artifacts/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Locator, type Page, type Route } from 'playwright-core';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { http, waitFor } from '../helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const README_SHOT = fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url));
const TIMEOUT_MS = 15_000;

let cluster: Cluster | undefined;
let browser: Browser | undefined;
let page: Page;
/** Everything the page reported as broken: script errors, console errors, CSP violations. */
const pageProblems: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser test needs Debian's Chromium (apt-get install chromium)`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  cluster = await startCluster();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, colorScheme: 'light' });
  context.setDefaultTimeout(TIMEOUT_MS);
  page = await context.newPage();
  page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageProblems.push(`console: ${message.text()}`);
  });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await cluster?.close();
});

/** Resolves when the element's text matches; fails after the default timeout naming what was seen. */
async function expectText(locator: Locator, expected: RegExp): Promise<void> {
  try {
    await locator.filter({ hasText: expected }).waitFor();
  } catch {
    const seen = await locator.textContent({ timeout: 1000 }).catch(() => '(absent)');
    assert.fail(`expected ${locator} to match ${expected}; it reads ${JSON.stringify(seen)}`);
  }
}

async function sendOperation(op: string, a: string, b: string): Promise<void> {
  await page.getByLabel('Operation').selectOption(op);
  await page.getByLabel('Number a').fill(a);
  await page.getByLabel('Number b').fill(b);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
}

test('when the dashboard opens, then it is served with a strict CSP and shows every service up', async () => {
  const home = await http(`${cluster!.gatewayUrl}/`);
  assert.equal(home.status, 200);
  assert.match(home.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(home.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  const script = await http(`${cluster!.gatewayUrl}/dashboard/app.js`);
  assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
  for (const probe of ['/dashboard/..%2Fpackage.json', '/dashboard/%2e%2e%2f%2e%2e%2fpackage.json', '/dashboard/index.ts', '/dashboard/constructor']) {
    assert.equal((await http(`${cluster!.gatewayUrl}${probe}`)).status, 404, probe);
  }
  const openapi = await http(`${cluster!.gatewayUrl}/openapi.json`);
  assert.ok(!Object.keys(openapi.body.paths).some((path) => path === '/' || path.startsWith('/dashboard')), 'dashboard routes stay out of the OpenAPI document');

  await page.goto(cluster!.gatewayUrl);
  await expectText(page.getByTestId('link-state'), /live/);
  for (const op of ['add', 'subtract', 'multiply', 'divide', 'evaluate']) {
    await expectText(page.getByTestId(`service-state-${op}`), /^up$/);
  }
  await expectText(page.getByTestId('queue-depth-add'), /^0$/);
});

test('when an operation is sent through the form with the keyboard, then its result is shown', async () => {
  await page.getByLabel('Operation').selectOption('add');
  await page.getByLabel('Number a').fill('6');
  await page.getByLabel('Number b').fill('7');
  await page.getByLabel('Number b').press('Enter');
  await expectText(page.getByTestId('result'), /^13$/);
  await expectText(page.getByTestId('ticket-status'), /done/);
  await expectText(page.getByTestId('activity').getByTestId('activity-row').first(), /6 \+ 7.*direct.*= 13/);

  await page.getByLabel('Expression').fill('(6+7)*3 - 8/2');
  await page.getByRole('button', { name: 'Evaluate' }).click();
  await expectText(page.getByTestId('result'), /^35$/);
});

test('when the add service is killed, then it is marked down and the requests sent meanwhile queue up', async () => {
  await cluster!.signalService('add', 'SIGKILL');
  await expectText(page.getByTestId('service-state-add'), /down/);
  await expectText(page.getByTestId('service-add'), /unreachable/);
  await expectText(page.getByTestId('service-state-subtract'), /^up$/);

  for (const [a, b] of [['1', '2'], ['2', '3'], ['3', '4']] as const) {
    await sendOperation('add', a, b);
    await expectText(page.getByTestId('answer-detail'), new RegExp(`${a} \\+ ${b}: the service is unavailable`));
    await expectText(page.getByTestId('ticket-status'), /queued/);
  }
  await expectText(page.getByTestId('queue-depth-add'), /^([3-9]|[1-9]\d+)$/);
  // The page holds the gateway's event stream open while it has tickets waiting.
  await expectText(page.getByTestId('push-state'), /pushed to this page/);
  await expectText(page.getByTestId('activity').getByTestId('activity-row').first(), /3 \+ 4.*queued/);
  const shot = `${ARTIFACTS}dashboard-desktop-down.png`;
  await page.screenshot({ path: shot, fullPage: true });
  // The README's picture (a service down, its requests queued) is refreshed only when missing or
  // on request, so that a test run leaves the committed tree as it was.
  if (!existsSync(README_SHOT) || process.env.UPDATE_SCREENSHOTS === '1') {
    copyFileSync(shot, README_SHOT);
    assert.ok(statSync(README_SHOT).size < 300 * 1024, 'docs/dashboard.png stays under 300 KB');
  }
});

test('when the add service returns, then the queue drains to zero and every ticket resolves with its result', async () => {
  await cluster!.startService('add');
  await expectText(page.getByTestId('service-state-add'), /^up$/);
  await expectText(page.getByTestId('queue-depth-add'), /^0$/);
  await expectText(page.getByTestId('ticket-status'), /done/);
  await expectText(page.getByTestId('result'), /^7$/);

  const tickets = page.getByTestId('tickets').locator('li[data-status]');
  await tickets.and(page.locator('[data-status="done"]')).nth(2).waitFor();
  const rows = await tickets.allTextContents();
  assert.equal(rows.length, 3, JSON.stringify(rows));
  for (const [label, result] of [['3 + 4', '7'], ['2 + 3', '5'], ['1 + 2', '3']] as const) {
    assert.ok(rows.some((row) => row.includes(label) && row.includes(`= ${result}`)), `a done ticket ${label} = ${result} in ${JSON.stringify(rows)}`);
  }
  // Pushed by GET /v1/events, not polled; and with nothing left to wait for, the stream is closed.
  assert.deepEqual(await tickets.evaluateAll((items: any[]) => items.map((item) => item.dataset.via)), ['push', 'push', 'push']);
  await waitFor(async () => ((await page.getByTestId('push-state').textContent()) === '' ? true : undefined), 'the push note to clear');
  await expectText(page.getByTestId('activity').getByTestId('activity-row').first(), /3 \+ 4.*queued.*ticket done = 7/);

  await page.screenshot({ path: `${ARTIFACTS}dashboard-desktop.png`, fullPage: true });
});

test('when the subtract service hangs (SIGSTOP), then its card shows one state, not answering, instead of up next to an open breaker', async () => {
  await cluster!.signalService('subtract', 'SIGSTOP');
  try {
    // Each call waits out its deadline; enough failures open the circuit, and the rest queue at once.
    for (const [a, b] of [['9', '1'], ['8', '1'], ['7', '1'], ['6', '1']] as const) {
      await sendOperation('subtract', a, b);
      await expectText(page.getByTestId('ticket-status'), /queued/);
    }
    await expectText(page.getByTestId('service-state-subtract'), /^not answering — requests queued$/);
    await expectText(page.getByTestId('service-subtract'), /breaker open/);
    assert.equal(await page.getByTestId('service-subtract').getByText(/^serving$/).count(), 0, 'no green "serving" beside the open breaker');
  } finally {
    await cluster!.signalService('subtract', 'SIGCONT');
  }
  // A request after the half-open delay probes the replica and closes its circuit: send until then.
  await waitFor(async () => {
    await sendOperation('subtract', '5', '1');
    return /^up$/.test((await page.getByTestId('service-state-subtract').textContent()) ?? '') ? true : undefined;
  }, 'the subtract card to read up again', 20_000);
});

test('when a replica serves no health service (a foreign one) and its circuit is closed, then its card shows it up', async () => {
  // The real status document, with add's replicas reporting what a health-less peer makes of them.
  const healthless = async (route: Route) => {
    const response = await route.fetch();
    const body = await response.json();
    for (const replica of body.services.add.replicas) replica.health = 'UNIMPLEMENTED';
    await route.fulfill({ response, json: body });
  };
  await page.route('**/v1/status', healthless);
  try {
    await expectText(page.getByTestId('service-state-add'), /^up$/);
    await expectText(page.locator('[data-testid="service-add"] .replica'), /no health service/);
  } finally {
    await page.unroute('**/v1/status', healthless);
  }
});

test("when an operation's queue is stalled (nothing claims its tasks), then its card says so in words and is not plain up", async () => {
  const stalled = async (route: Route) => {
    const response = await route.fetch();
    const body = await response.json();
    body.services.multiply.queue = { ...(body.services.multiply.queue ?? { depth: 0, inFlight: 0, oldestAgeMs: 0, deadLetters: 0 }), depth: 7, oldestAgeMs: 95_000, stalled: true,
      stallReason: '7 task(s) waiting, the oldest 95 s old, and no consumer has claimed for 95 s: is its service running, and on the same queue (CALC_DATA_DIR or CALC_REDIS_URL)?' };
    await route.fulfill({ response, json: body });
  };
  await page.route('**/v1/status', stalled);
  try {
    await expectText(page.getByTestId('service-state-multiply'), /queue not draining/);
    await expectText(page.getByTestId('queue-stall-multiply'), /Not draining: 7 task\(s\) waiting.*same queue/);
    await page.screenshot({ path: `${ARTIFACTS}dashboard-stalled.png` });
  } finally {
    await page.unroute('**/v1/status', stalled);
  }
  await page.getByTestId('queue-stall-multiply').waitFor({ state: 'hidden' });
  await expectText(page.getByTestId('service-state-multiply'), /^up$/);
});

test('when the page is 375 px wide, then nothing overflows sideways and every control has a label', async () => {
  await page.setViewportSize({ width: 375, height: 800 });
  const width = await page.evaluate<number>('document.scrollingElement.scrollWidth');
  assert.ok(width <= 375, `the page is ${width} px wide at a 375 px viewport`);
  await page.screenshot({ path: `${ARTIFACTS}dashboard-375.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${ARTIFACTS}dashboard-375-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  // The page's DOM types are not in this project's lib, so the check reads the elements loosely.
  const unlabelled = await page.locator('input, select, textarea').evaluateAll((controls: any[]) =>
    controls
      .filter((control) => {
        const byLabel = [...(control.labels ?? [])].some((label: any) => label.textContent.trim() !== '');
        const byAria = (control.getAttribute('aria-label') ?? '').trim() !== '' || control.hasAttribute('aria-labelledby');
        return !byLabel && !byAria;
      })
      .map((control) => control.outerHTML as string));
  assert.deepEqual(unlabelled, [], 'every input has an accessible label');
  await expectText(page.getByTestId('answer'), /./);
  assert.equal(await page.getByTestId('answer').getAttribute('aria-live'), 'polite');
});

test('when the dashboard was used, then it reported no script error and no blocked resource', () => {
  assert.deepEqual(pageProblems, []);
});

test('when the gateway goes away, then a banner says so and the page recovers by itself when it is back', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await cluster!.killGateway('SIGKILL');
  await expectText(page.getByTestId('offline-banner'), /Cannot reach the gateway/);
  await expectText(page.getByTestId('link-state'), /unreachable/);
  await page.screenshot({ path: `${ARTIFACTS}dashboard-offline.png` });
  await cluster!.startGateway();
  await page.getByTestId('offline-banner').waitFor({ state: 'hidden' });
  await expectText(page.getByTestId('link-state'), /live/);
  await expectText(page.getByTestId('service-state-add'), /^up$/);
});

test('when a poll\'s two requests disagree as the gateway comes back, then the banner still clears', async () => {
  // Every poll sends /v1/status and /v1/activity together. One handler plays the network: first
  // it refuses every call; then, in one poll, status is refused and only after that is activity
  // answered (the order that once left the banner up), and everything goes through from then on.
  let comingBack = false;
  let statusRefused!: () => void;
  const afterStatusRefused = new Promise<void>((resolve) => (statusRefused = resolve));
  let splitStatus = false;
  let splitActivity = false;
  const network = async (route: Route) => {
    const path = new URL(route.request().url()).pathname;
    if (!comingBack) return route.abort('connectionrefused');
    if (path === '/v1/status' && !splitStatus) {
      splitStatus = true;
      await route.abort('connectionrefused');
      return statusRefused();
    }
    if (path === '/v1/activity' && !splitActivity) {
      splitActivity = true;
      await afterStatusRefused;
    }
    // The page may have given up on a held request (its 3 s timeout): nothing left to answer.
    return route.continue().catch(() => undefined);
  };
  await page.route('**/v1/**', network);
  await expectText(page.getByTestId('link-state'), /unreachable/);
  await page.getByTestId('offline-banner').waitFor({ state: 'visible' });
  comingBack = true;
  await page.getByTestId('offline-banner').waitFor({ state: 'hidden' });
  await expectText(page.getByTestId('link-state'), /live/);
  assert.ok(splitStatus && splitActivity, 'the poll with one refused and one answered request happened');
  await page.unroute('**/v1/**', network);
});
