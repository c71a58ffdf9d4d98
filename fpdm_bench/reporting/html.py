"""index.html: one static page showing every table and figure of a report.

Self-contained: the style sheet is inline, there is no script, and every link and image is a
relative path inside the report folder, so the page works opened from disk, copied elsewhere or
served as static files (e.g. GitHub Pages). Images are shown at their print size (300 dpi PNG
→ 96 CSS px per inch) and link to the full-resolution file.
"""
from __future__ import annotations

import html
from pathlib import Path

from fpdm_bench.reporting._common import DPI, Artefact

SECTIONS = [("tables", "Tables"), ("grid", "Qualitative grid"), ("per_sample", "Per-sample: where two models differ most"),
            ("videos", "Videos"),
            ("robustness", "Robustness curves"), ("timing", "What each model costs"),
            ("stage1", "Stage-1 similarity ranking")]
LINK_NAMES = {"md": "Markdown", "tex": "LaTeX", "csv": "data (CSV)", "csv_hist": "histogram data (CSV)",
              "summary_csv": "summary (CSV)", "significance": "significance tests (CSV)", "png": "PNG (300 dpi)",
              "webp": "animated WebP", "gif": "animated GIF", "pdf": "PDF", "svg": "SVG"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1180px;
padding:1.2em 1.6em 3em;color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:1.4em 0 .4em}
nav a{margin-right:1em}.meta{color:#57606a;font-size:.9em}
figure{margin:.6em 0 1.6em}figure img{max-width:100%;height:auto;border:1px solid #eaeef2;background:#fff}
figcaption{font-size:.88em;color:#424a53;max-width:900px}
.links{font-size:.85em}.links a{margin-right:.8em}
table.metrics{border-collapse:collapse;font-size:.88em;margin:.4em 0;font-variant-numeric:tabular-nums}
table.metrics th,table.metrics td{padding:.25em .6em;text-align:right;border-bottom:1px solid #eaeef2;white-space:nowrap}
table.metrics th{border-bottom:2px solid #1f2328}
table.metrics td.label,table.metrics th:first-child{text-align:left}
table.metrics tr.floor td{color:#57606a}table.metrics tr.floor td.label{font-style:italic}
table.metrics tr.first td{border-top:2px solid #8c959f}
.ci{color:#8c959f;font-size:.9em}
ul.notes{font-size:.85em;color:#424a53;padding-left:1.2em;max-width:900px}
.row{display:flex;flex-wrap:wrap;gap:0 2em}.row figure{max-width:560px}
ul.inputs{font-size:.85em;font-family:ui-monospace,monospace}
"""


def _links(files: dict[str, str]) -> str:
    parts = [f'<a href="{html.escape(path)}">{html.escape(LINK_NAMES.get(kind, kind))}</a>'
             for kind, path in files.items()]
    return f'<div class="links">{"".join(parts)}</div>' if parts else ""


def _figure(a: Artefact) -> str:
    e = html.escape
    img = ""
    if "png" in a.files:
        w, h = a.png_size or (None, None)
        vector = "pdf" in a.files or "svg" in a.files
        # vector figures at 1.5 x print size (PNG at DPI -> 96 CSS px per inch: small on a screen);
        # raster grids at 1:1
        scale = 1.5 * 96 / DPI if vector else 1.0
        dims = f' width="{round(w * scale)}" height="{round(h * scale)}"' if w else ""
        img = (f'<a href="{e(a.files["png"])}"><img src="{e(a.files["png"])}" alt="{e(a.title)}"{dims}></a>')
    elif "webp" in a.files or "gif" in a.files:  # an animation (videos.py): at 1:1, played by the browser, no script
        w, h = a.meta["size"]
        src = a.files.get("webp") or a.files["gif"]
        img = f'<img src="{e(src)}" alt="{e(a.title)}" width="{w}" height="{h}">'
    # a table's notes are part of its HTML; a figure gets its caption
    caption = "" if a.html else f"<figcaption>{e(a.caption)}</figcaption>"
    return (f'<figure id="{e(a.name)}"><h3>{e(a.title)}</h3>{a.html or ""}{img}{caption}{_links(a.files)}</figure>')


def write_index(root: Path, artefacts: list[Artefact], title: str, inputs: list[str], command: str,
                version: str) -> Path:
    e = html.escape
    present = [(key, name) for key, name in SECTIONS if any(a.section == key for a in artefacts)]
    nav = "".join(f'<a href="#{key}">{e(name)}</a>' for key, name in present)
    body = []
    for key, name in present:
        body.append(f'<section id="{key}"><h2>{e(name)}</h2>')
        figs = [_figure(a) for a in artefacts if a.section == key]
        # the per-sample views are narrow: side by side
        body.append(f'<div class="row">{"".join(figs)}</div>' if key == "per_sample" else "".join(figs))
        body.append("</section>")
    inputs_html = "".join(f"<li>{e(i)}</li>" for i in inputs)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{e(title)}</h1>
<p class="meta">Made by <code>{e(command)}</code> (fpdm-bench {e(version)}). Every table and figure has its data
beside it (CSV); figures are PNG at {DPI} dpi plus PDF and SVG where they are vector drawings.
<a href="report.json">report.json</a> lists the files.</p>
<nav>{nav}</nav>
{''.join(body)}
<h2 id="inputs">Inputs</h2>
<ul class="inputs">{inputs_html}</ul>
</body>
</html>
"""
    path = Path(root) / "index.html"
    path.write_text(page)
    return path
