// Drives Debian's chromium through Keel's pay page for core/api/tests/browser.rs.
//
// Input: the environment variable KEEL_BROWSER_PLAN, JSON:
//   { "chromium": "/usr/bin/chromium", "shots": "<folder for PNGs>",
//     "resolve": "MAP www.paynow.co.zw 127.0.0.1",
//     "scenarios": [ { "name": "web-js", "url": "<pay link>", "method": "web" | "ecocash",
//                      "phone": "0771111111", "js": true }, … ] }
// Output: one JSON line on stdout,
//   { "browser": "<version>", "scenarios": [ { "name", "ok", "error", "steps": [...],
//     "reference", "pending_seen", "instructions_seen", "paid_seen",
//     "navigations_while_waiting", "shots": [...] }, … ] }
// Each scenario runs in its own context (its own cookies) of one browser. What a scenario
// saw is reported, not judged: the Rust test asserts it, and checks the store.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const plan = JSON.parse(process.env.KEEL_BROWSER_PLAN ?? "");
/** How long one wait may take; generous, as the machine may be busy. Never asserted. */
const WAIT_MS = 90_000;

async function shot(page, report, name) {
  const path = join(plan.shots, report.name, `${String(report.shots.length + 1).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  report.shots.push(path);
}

async function run(browser, scenario) {
  const report = {
    name: scenario.name,
    ok: false,
    error: null,
    steps: [],
    reference: null,
    pending_seen: false,
    instructions_seen: false,
    paid_seen: false,
    navigations_while_waiting: null,
    shots: [],
  };
  mkdirSync(join(plan.shots, scenario.name), { recursive: true });
  const context = await browser.newContext({ javaScriptEnabled: scenario.js, viewport: { width: 800, height: 900 } });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const step = (s) => report.steps.push(s);
  try {
    await page.goto(scenario.url);
    step(`opened ${await page.title()}`);
    await shot(page, report, "pay-page");

    if (scenario.method === "web") {
      await page.getByRole("button", { name: "Pay online (Paynow)" }).click();
      await page.waitForURL(/\/Payment\/ConfirmPayment\//i);
      step(`at the provider ${new URL(page.url()).host}`);
      await shot(page, report, "paynow-checkout");
      await page.locator("button#pay").click();
    } else {
      const form = page.locator("form.method", { has: page.getByRole("button", { name: "EcoCash", exact: true }) });
      await form.locator("input[name=phone]").fill(scenario.phone);
      await shot(page, report, "ecocash-number");
      await form.getByRole("button", { name: "EcoCash", exact: true }).click();
    }

    await page.waitForURL(/\/pay\/return\//);
    report.reference = new URL(page.url()).pathname.split("/").pop();
    const main = page.locator("#main");
    const text = await main.innerText();
    report.pending_seen = text.includes("Waiting for confirmation");
    report.instructions_seen = text.includes("How to pay");
    step(`returned: ${text.split("\n").slice(0, 3).join(" | ")}`);
    await shot(page, report, "return-pending");

    if (scenario.js) {
      // From here the page must change by itself: count the main frame's navigations.
      let navigations = 0;
      page.on("framenavigated", (frame) => {
        if (frame === page.mainFrame()) navigations += 1;
      });
      await main.getByText("Paid, thank you").waitFor({ timeout: WAIT_MS });
      report.navigations_while_waiting = navigations;
    } else {
      // No script: the payer presses Refresh until it settles (each press is a new page).
      let presses = 0;
      while (!(await main.innerText()).includes("Paid, thank you")) {
        if (presses++ >= 30) throw new Error("still not paid after 30 presses of Refresh");
        await page.getByRole("link", { name: "Refresh" }).click();
        await page.waitForLoadState("load");
        step(`refreshed: ${(await main.innerText()).split("\n").slice(0, 2).join(" | ")}`);
        if (!(await main.innerText()).includes("Paid, thank you")) {
          await page.waitForTimeout(1000);
        }
      }
    }
    report.paid_seen = (await main.innerText()).includes("Paid, thank you");
    step(`settled: ${(await main.innerText()).split("\n").slice(0, 2).join(" | ")}`);
    await shot(page, report, "paid");

    // The pay link afterwards: paid, nothing more to pay.
    await page.goto(scenario.url);
    step(`pay link afterwards: ${(await main.innerText()).includes("This invoice is paid") ? "paid" : "not paid"}`);
    await shot(page, report, "pay-link-after");
    report.ok = true;
  } catch (e) {
    report.error = String(e?.stack ?? e);
    try {
      await shot(page, report, "failure");
    } catch {}
  } finally {
    await context.close();
  }
  return report;
}

const browser = await chromium.launch({
  executablePath: plan.chromium,
  headless: true,
  args: [`--host-resolver-rules=${plan.resolve}`, "--no-sandbox", "--disable-dev-shm-usage"],
});
const out = { browser: browser.version(), scenarios: [] };
try {
  for (const scenario of plan.scenarios) {
    out.scenarios.push(await run(browser, scenario));
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
