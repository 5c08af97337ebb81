"""`GET /status`: the figures of `/usage` as a page a person reads (server-rendered; the only
script reloads it every `REFRESH_S` seconds). Behind the same shared secret as every route."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from .. import usage
from ..display import duration
from ..runtime import current

bp = Blueprint("status", __name__, template_folder="templates")

REFRESH_S = 15
CHART_W, CHART_H = 600, 120


def chart(per_minute: list[int], limit: float) -> dict[str, Any]:
    """Bars for calls per minute (oldest left) under a line at the limit, in SVG units."""
    top = max([limit, *per_minute, 1]) * 1.1
    width = CHART_W / max(len(per_minute), 1)
    bars = [
        {"x": round(i * width, 1), "w": round(width * 0.8, 1), "h": round(v / top * CHART_H, 1), "v": v}
        for i, v in enumerate(per_minute)
    ]
    return {"bars": bars, "limit_y": round(CHART_H - limit / top * CHART_H, 1), "w": CHART_W, "h": CHART_H}


@bp.get("/status")
def status() -> str:
    figures = usage.collect(current())
    drawing = chart(figures["calls_per_minute"]["last_hour"], figures["calls_per_minute"]["limit"])
    return render_template("status.html", u=figures, chart=drawing, duration=duration, refresh_s=REFRESH_S)
