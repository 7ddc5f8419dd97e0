"""Small inline SVG charts for the reports: drawn as text, so no browser or plotting library is needed.

>>> svg = percentile_chart({"50.000000": 0.1, "99.000000": 12.5}, threshold_ms=10, title="fdatasync")
>>> svg.startswith("<svg") and "p99" in svg and "10 ms" in svg
True
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

PASS_COLOUR = "#2e7d32"
FAIL_COLOUR = "#c62828"
#: One colour per verdict in every report (HTML report, handover, charts).
VERDICT_COLOURS = {
    "pass": PASS_COLOUR, "fail": FAIL_COLOUR, "warn": "#ef6c00", "error": "#6a1b9a", "waived": "#1565c0",
    "skip": "#757575", "not-run": "#bdbdbd", "not-implemented": "#e0e0e0",
}
WIDTH, LABEL, ROW, TOP = 520, 60, 24, 34


def svg_open(width: float, height: float, title: str, *, tooltip: str | None = None, font_size: int = 11,
             title_x: int = 4, title_y: int = 15) -> list[str]:
    """The opening of every chart: an ``<svg>`` a browser renders inline or as an image, its accessible title
    (``tooltip`` when it should say more than the heading) and the heading drawn at the top."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{font_size}" role="img">',
            f"<title>{escape(tooltip or title)}</title>",
            f'<text x="{title_x}" y="{title_y}" font-weight="bold" font-size="12">{escape(title)}</text>']


def _percentile_label(key: str) -> str:
    """fio's ``"99.900000"`` -> ``p99.9``."""
    return "p" + f"{float(key):g}"


def percentile_chart(percentiles_ms: Mapping[str, float], threshold_ms: float, title: str,
                     shown: tuple[str, ...] = ("50.000000", "90.000000", "95.000000", "99.000000", "99.900000"),
                     judged: str = "99.000000") -> str:
    """Horizontal bars of the latency percentiles (ms) with the threshold as a dashed line.

    The judged percentile is drawn red when above the threshold; the others are context and stay grey.
    """
    rows = [(key, percentiles_ms[key]) for key in shown if key in percentiles_ms]
    scale_max = max([threshold_ms, *(value for _, value in rows)]) * 1.15 or 1.0
    plot = WIDTH - LABEL - 90
    height = TOP + ROW * max(1, len(rows)) + 16

    def x(value: float) -> float:
        return LABEL + plot * value / scale_max

    parts = svg_open(WIDTH, height, title, font_size=12, title_y=16)
    for index, (key, value) in enumerate(rows):
        y = TOP + index * ROW
        colour = (FAIL_COLOUR if value >= threshold_ms else PASS_COLOUR) if key == judged else "#9e9e9e"
        parts += [f'<text x="4" y="{y + 14}">{_percentile_label(key)}</text>',
                  f'<rect x="{LABEL}" y="{y + 3}" width="{max(1.0, x(value) - LABEL):.1f}" height="{ROW - 8}" '
                  f'fill="{colour}"/>',
                  f'<text x="{x(value) + 4:.1f}" y="{y + 14}">{value:.3g} ms</text>']
    line_x = x(threshold_ms)
    parts += [f'<line x1="{line_x:.1f}" y1="{TOP - 6}" x2="{line_x:.1f}" y2="{height - 10}" stroke="{FAIL_COLOUR}" '
              'stroke-dasharray="4 3"/>',
              f'<text x="{line_x + 3:.1f}" y="{TOP - 8}" fill="{FAIL_COLOUR}">limit {threshold_ms:g} ms</text>',
              "</svg>"]
    return "\n".join(parts)


def verdict_bar(counts: Mapping[str, int], title: str, width: int = 300) -> str:
    """One stacked bar of verdict counts (a checklist section on the handover cover), with its legend.

    >>> svg = verdict_bar({"pass": 3, "fail": 1}, "DNS")
    >>> "3 pass" in svg and "1 fail" in svg
    True
    """
    total = sum(counts.values()) or 1
    shown = [(verdict, counts[verdict]) for verdict in VERDICT_COLOURS if counts.get(verdict)]
    legend_rows = (len(shown) + 2) // 3
    height = 46 + 16 * legend_rows
    parts = svg_open(width, height, title, tooltip=f"{title}: " + ", ".join(f"{n} {v}" for v, n in shown),
                     title_x=0, title_y=13)
    x = 0.0
    for verdict, count in shown:
        span = (width - 2) * count / total
        parts.append(f'<rect x="{x:.1f}" y="20" width="{span:.1f}" height="14" fill="{VERDICT_COLOURS[verdict]}" '
                     'stroke="#ffffff" stroke-width="0.5"/>')
        x += span
    for index, (verdict, count) in enumerate(shown):
        lx, ly = (index % 3) * (width / 3), 48 + 16 * (index // 3)
        parts += [f'<rect x="{lx:.1f}" y="{ly - 9}" width="9" height="9" fill="{VERDICT_COLOURS[verdict]}"/>',
                  f'<text x="{lx + 12:.1f}" y="{ly}">{count} {escape(verdict)}</text>']
    parts.append("</svg>")
    return "\n".join(parts)
