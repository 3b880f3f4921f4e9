"""Herald/Redis ratio bars as a self-contained SVG (no fonts, scripts or links to fetch when the page is
viewed), written by bench/compare.py beside the tables it prints, into docs/charts/. Standard library only.

A bar per workload: the ratio Herald/Redis of one measure, drawn on a scale where 1.0 (parity) is a
vertical line; bars on the good side of it are green, the others orange, for measures where lower is
better (CPU per request, memory) or higher is better (throughput).
"""
import os
from xml.sax.saxutils import escape

CHARTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "charts")


def ratio_bars(name, title, rows, lower_is_better=True, subtitle=""):
    """Writes docs/charts/NAME.svg: `rows` are (label, ratio) pairs; returns the path."""
    width, left, right, bar, gap, top = 720, 210, 70, 18, 8, 58
    height = top + len(rows) * (bar + gap) + 34
    span = max([2.0] + [r for _, r in rows if r == r]) * 1.05
    scale = (width - left - right) / span
    x = lambda v: left + v * scale
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="20" font-size="15" font-weight="bold" fill="#1d2330">{escape(title)}</text>',
        f'<text x="{left}" y="38" fill="#6b7385">{escape(subtitle or ("Herald / Redis, lower is better" if lower_is_better else "Herald / Redis, higher is better"))}</text>',
    ]
    for tick in [t / 2 for t in range(0, int(span * 2) + 1)]:
        out.append(f'<line x1="{x(tick):.1f}" y1="{top - 6}" x2="{x(tick):.1f}" y2="{height - 28}" stroke="#eef0f4"/>')
        out.append(f'<text x="{x(tick):.1f}" y="{height - 12}" text-anchor="middle" fill="#6b7385">{tick:g}x</text>')
    for i, (label, ratio) in enumerate(rows):
        y = top + i * (bar + gap)
        good = ratio <= 1.0 if lower_is_better else ratio >= 1.0
        out.append(f'<text x="{left - 8}" y="{y + bar - 5}" text-anchor="end" fill="#1d2330">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(1.0, ratio * scale):.1f}" height="{bar}" fill="{"#1f9d55" if good else "#e08a1e"}"/>')
        out.append(f'<text x="{x(ratio) + 5:.1f}" y="{y + bar - 5}" fill="#1d2330">{ratio:.2f}x</text>')
    out.append(f'<line x1="{x(1):.1f}" y1="{top - 6}" x2="{x(1):.1f}" y2="{height - 28}" stroke="#1d2330" stroke-width="1.5"/>')
    out.append("</svg>\n")
    os.makedirs(CHARTS, exist_ok=True)
    path = os.path.join(CHARTS, name + ".svg")
    with open(path, "w") as f:
        f.write("\n".join(out))
    return path
