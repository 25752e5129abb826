// check-report.mjs - an independent reader of modelq's HTML report, for tests/test_report_html.c.
//
//   node check-report.mjs svg FILE.html   every <svg>...</svg> of the file parsed as a standalone XML
//                                         document by saxes (a strict, namespace-aware parser: any
//                                         well-formedness error fails); prints JSON:
//                                         {"svgs": N, "marks": [{"svg": class, "i": index of the svg,
//                                         "el": name, "a": {attrs}}]}
//                                         for every element that has a class and a data-* attribute,
//                                         and {"external": [...]} for any src/href/url() that is not
//                                         a fragment ("#x") or data: URL.
//   node check-report.mjs png FILE.png    decodes the PNG with pngjs; prints
//                                         {"width", "height", "nonwhite"} (pixels not pure white).
// Exits 1 with a one-line message on stderr when the file cannot be read or parsed.
import { readFileSync } from "node:fs";
import { SaxesParser } from "saxes";
import pngjs from "pngjs";

const [mode, file] = process.argv.slice(2);
function fail(msg) {
  process.stderr.write(`check-report: ${file}: ${msg}\n`);
  process.exit(1);
}

if (mode === "svg") {
  const html = readFileSync(file, "utf8");
  const svgs = html.match(/<svg[\s>][\s\S]*?<\/svg>/g) || [];
  const marks = [];
  const external = [];
  // resource references anywhere in the document (HTML, CSS, SVG)
  for (const m of html.matchAll(/\b(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?([^"'\s>]*)/gi)) {
    if (!m[1].startsWith("#") && !m[1].startsWith("data:")) external.push(m[0]);
  }
  for (const m of html.matchAll(/url\(\s*["']?([^"')]*)/gi)) {
    if (!m[1].startsWith("#")) external.push(m[0]);
  }
  for (const m of html.matchAll(/@import|<script|<link|<iframe|<object|<embed/gi)) external.push(m[0]);
  svgs.forEach((text, k) => {
    const parser = new SaxesParser({ xmlns: true, position: true });
    let svgClass = null;
    parser.on("error", (e) => fail(`svg ${k}: ${e.message}`));
    parser.on("opentag", (node) => {
      const a = {};
      for (const [name, attr] of Object.entries(node.attributes)) a[name] = attr.value;
      if (node.name === "svg") {
        if (node.uri !== "http://www.w3.org/2000/svg") fail(`svg ${k}: not in the SVG namespace`);
        svgClass = a.class || "";
      }
      if (a.class && Object.keys(a).some((n) => n.startsWith("data-")))
        marks.push({ svg: svgClass, i: k, el: node.name, a });
    });
    parser.write(text).close();
  });
  process.stdout.write(JSON.stringify({ svgs: svgs.length, marks, external }) + "\n");
} else if (mode === "png") {
  let png;
  try {
    png = pngjs.PNG.sync.read(readFileSync(file));
  } catch (e) {
    fail(e.message);
  }
  let nonwhite = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (png.data[i] !== 255 || png.data[i + 1] !== 255 || png.data[i + 2] !== 255) nonwhite++;
  }
  process.stdout.write(JSON.stringify({ width: png.width, height: png.height, nonwhite }) + "\n");
} else {
  fail("usage: node check-report.mjs svg FILE.html | png FILE.png");
}
