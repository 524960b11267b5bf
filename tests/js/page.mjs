// Drive examples/web in headless Chromium (Debian's `chromium`, started with the flags a sandboxed root needs) and
// print what the page computed as one JSON object: the resized pixels of every image, and per model its runtime and
// scores (or the error it raised). Used by tests/test_examples_js.py, which serves the page and bounds this process.
//
//   node page.mjs '{"url": "http://127.0.0.1:PORT/index.html", "models": [...], "images": [...], "raw_litert": [...]}'
import { chromium } from "playwright-core";

const job = JSON.parse(process.argv[2]);
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const browser = await chromium.launch({
  executablePath: job.chromium || "/usr/bin/chromium",
  headless: true,
  chromiumSandbox: false,
  args: FLAGS,
  timeout: 60_000,
});
try {
  const page = await browser.newPage();
  const log = [];
  page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(job.timeout_ms || 240_000);
  await page.goto(job.url);
  await page.waitForFunction(() => window.sqnxt !== undefined);
  const result = await page.evaluate(async ({ models, images, size, rawLiteRt }) => {
    const { openModel, decodeImage, classify, preprocessing } = window.sqnxt;
    const decoded = [];
    for (const url of images) decoded.push(await decodeImage(url));
    const out = {
      pixels: decoded.map((d) => Array.from(preprocessing.resizeRGB(d.data, d.width, d.height, size))),
      models: {},
      raw_litert: {},
    };
    for (const url of models) {
      try {
        const model = await openModel(url);
        const scores = [];
        for (const image of decoded) scores.push(Array.from((await classify(model, image)).scores));
        out.models[url] = { runtime: model.runtime, scores };
      } catch (error) {
        out.models[url] = { error: String(error && error.message ? error.message : error) };
      }
    }
    for (const url of rawLiteRt) { // LiteRT.js itself, without the sidecar's warning: does the file load?
      try {
        const litert = await import("@litertjs/core");
        await litert.loadAndCompile(url, { accelerator: "wasm" });
        out.raw_litert[url] = { loaded: true };
      } catch (error) {
        out.raw_litert[url] = { loaded: false, error: String(error && error.message ? error.message : error) };
      }
    }
    return out;
  }, { models: job.models, images: job.images, size: job.size, rawLiteRt: job.raw_litert || [] });
  result.log = log;
  process.stdout.write(JSON.stringify(result));
} finally {
  await browser.close();
}
