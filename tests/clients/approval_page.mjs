// Drives the admin page in headless Chromium: sign in, wait for the pending call, approve it.
// Usage: node approval_page.mjs BASE_URL ADMIN_TOKEN TOOL SCREENSHOT.png
import { chromium } from "playwright-core";

const [base, token, tool, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  await page.goto(`${base}/admin`);
  await page.fill("#token", token);
  await page.click("#sign-in");
  const row = page.locator(`tr[data-status="pending"]`, { hasText: tool });
  await row.waitFor({ timeout: 15000 });
  const argumentsShown = await row.locator("pre.arguments").textContent();
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  const id = await row.getAttribute("data-id");
  await row.locator("input.reason").fill("looks right");
  await row.locator("button.approve").click();
  await page.locator(`tr[data-id="${id}"][data-status="approved"], tr[data-id="${id}"][data-status="used"]`).waitFor({ timeout: 15000 });
  console.log(JSON.stringify({ approved: id, argumentsShown }));
} finally {
  await browser.close();
}
