"""Open a report's index.html in headless Chromium and check that every image loads.

    .venv/bin/python tools/check_report_in_browser.py reports/example [--screenshot out.png]

A copy of the report gets a small inline script that, once the page has loaded, counts the <img>
elements whose ``naturalWidth`` is 0 (not found, or not an image) and writes the count into the
page; Chromium's ``--dump-dom`` prints the page, and this script reads the count back. Exit status 1
if an image is broken. Needs a Chromium binary (Debian: ``apt-get install chromium``); CI does not.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECK = ("<script>window.addEventListener('load',function(){var im=document.images,ok=0,bad=[];"
         "for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++;else bad.push(im[i].getAttribute('src'));}"
         "var d=document.createElement('pre');d.id='imgcheck';"
         "d.textContent='IMAGES '+im.length+' LOADED '+ok+' BROKEN ['+bad.join(' ')+']';document.body.appendChild(d);});"
         "</script>")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="report folder (with index.html)")
    ap.add_argument("--screenshot", type=Path, help="also save a full-page screenshot here")
    ap.add_argument("--browser", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    args = ap.parse_args()
    flags = ["--headless", "--no-sandbox", "--disable-gpu"]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "report"
        shutil.copytree(args.report, copy)
        page = copy / "index.html"
        page.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
        dom = subprocess.run([args.browser, *flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"IMAGES (\d+) LOADED (\d+) BROKEN \[([^\]]*)\]", dom)
    if not found:
        print("the check did not run (is the browser working?)", file=sys.stderr)
        return 2
    total, loaded, broken = int(found[1]), int(found[2]), found[3].split()
    print(f"{args.report / 'index.html'}: {loaded} of {total} images loaded" + (f"; broken: {broken}" if broken else ""))
    if args.screenshot:
        subprocess.run([args.browser, *flags, f"--screenshot={args.screenshot.resolve()}", "--window-size=1400,9000",
                        (args.report / "index.html").resolve().as_uri()], capture_output=True, timeout=120)
        print(f"screenshot: {args.screenshot}")
    return 0 if total and loaded == total else 1


if __name__ == "__main__":
    sys.exit(main())
