"""The HTML report's style sheet and policy: one inline sheet, no fonts or images fetched; at
narrow widths the changes table turns into one card per change, each cell labelled.
"""

from __future__ import annotations

__all__ = ["CSS", "PLAN_COLUMNS", "POLICY", "RUN_COLUMNS"]

_BASE_COLUMNS = ("#", "task", "name", "owner", "app", "type")
_CHANGE_COLUMNS = ("action", "before → after")
#: a plan says what made each task match; a run says what became of each change
PLAN_COLUMNS = (*_BASE_COLUMNS, "matched on", *_CHANGE_COLUMNS)
RUN_COLUMNS = (*_BASE_COLUMNS, *_CHANGE_COLUMNS, "outcome", "HTTP", "error")

_BASE_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color: #1b1f24; background: #fff; margin: 24px auto; max-width: 1280px; padding: 0 16px; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .6em; padding-bottom: .2em;
  border-bottom: 1px solid #d0d7de; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
.banner { background: #fff8c5; border: 2px solid #9a6700; color: #4d2d00; font-weight: 700;
  padding: 8px 12px; margin: 8px 0 12px; }
.scroll { overflow-x: auto; max-width: 100%; }
td, th { overflow-wrap: break-word; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #eaeef2; }
tbody tr:nth-child(even) { background: #f6f8fa; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.counts { display: flex; flex-wrap: wrap; gap: 12px 32px; margin-top: 12px; }
.counts caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
table.changes { width: 100%; }
section.table p.note { margin: 0 0 8px; color: #57606a; }
.with-chart { display: flex; flex-wrap: wrap; gap: 16px 40px; align-items: flex-start; }
@media (max-width: 900px) { body { margin: 12px auto; padding: 0 8px; } }
@media (max-width: 600px) {
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dt { margin-top: 4px; }
}
.id { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.change, .error, .matched, .id { overflow-wrap: anywhere; }
.outcome-failed, .outcome-conflict { color: #a40e26; font-weight: 600; }
.outcome-applied { color: #1a7f37; }
.outcome-pending { color: #9a6700; }
.charts { display: flex; flex-wrap: wrap; gap: 16px 40px; }
figure.chart { margin: 0; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
svg { max-width: 100%; height: auto; }
svg text { font: 12px system-ui, Arial, sans-serif; fill: #1b1f24; }
rect.bar { fill: #0969da; }
rect.bar.other { fill: #8c959f; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

#: below this width the changes table is shown as cards: nine columns do not fit a phone
_CARDS_BELOW_PX = 900
_CARDS = """
@media (max-width: %dpx) {
  .cards table, .cards tbody, .cards tr, .cards td { display: block; width: auto; }
  .cards thead { display: none; }
  .cards tr { border: 1px solid #d0d7de; margin: 0 0 8px; padding: 4px 0; }
  .cards td { border: none; display: grid; grid-template-columns: 8.5em minmax(0, 1fr);
    gap: 8px; padding: 1px 8px; text-align: left; }
  .cards td::before { color: #57606a; font: 13px/1.45 system-ui, Arial, sans-serif; }
}
"""


def _labels(kind: str, columns: tuple[str, ...]) -> str:
    """Each card cell's label, from its column (CSS strings: the names are our own)."""
    rules = (
        f'.cards.{kind} td:nth-child({i})::before {{ content: "{name}"; }}'
        for i, name in enumerate(columns, 1)
    )
    return "\n".join(rules)


CSS = (
    _BASE_CSS
    + _CARDS % _CARDS_BELOW_PX
    + f"@media (max-width: {_CARDS_BELOW_PX}px) {{\n"
    + _labels("plan", PLAN_COLUMNS)
    + "\n"
    + _labels("run", RUN_COLUMNS)
    + "\n}\n"
)

# a second line of defence behind escaping: no script runs and nothing is fetched
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
