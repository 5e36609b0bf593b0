"""The measurement page's figures: pure functions from preview arrays to Plotly figures."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ims.images import Window
from ims.layout import Layout
from portal.previews.imzml import Preview

ACCENT = "#2a6f97"
PEAK = "#e4572e"
NO_SPECTRUM = "#d0d0d0"   # the images' background, seen where a pixel has no spectrum (NaN)
# A browser draws a few thousand points of a line easily; longer spectra are thinned to this,
# keeping each stretch's highest point so no peak disappears.
MAX_POINTS = 4000
MARGIN = dict(l=60, r=20, t=44, b=48)


def tic_figure(preview: Preview, selected: tuple[int, int] | None = None) -> go.Figure:
    """The total-ion-current image, with the selected pixel outlined."""
    return image_figure(preview, preview.tic, "Total ion current (TIC)", "TIC", selected)


def ion_figure(preview: Preview, image: np.ndarray, query: Window) -> go.Figure:
    """An ion image on the TIC image's raster, titled with its m/z window."""
    title = f"Ion image: {query.centre()}<br><sup>m/z {query.bounds()}</sup>"
    return image_figure(preview, image, title, "Intensity")


def image_figure(layout: Layout, z: np.ndarray, title: str, what: str,
                 selected: tuple[int, int] | None = None) -> go.Figure:
    """An image of the pair as a heatmap in imzML pixel coordinates (y down, square pixels), pixels
    without a spectrum in grey (said below the image when there are any)."""
    height, width = z.shape
    x0, y0 = layout.origin
    heatmap = go.Heatmap(z=z, x=np.arange(width) + x0, y=np.arange(height) + y0, hoverongaps=False,
                         colorscale="Viridis", colorbar=dict(title=dict(text=f"{what}<br>(a.u.)")),
                         hovertemplate=f"pixel (%{{x}}, %{{y}})<br>{what} %{{z:.4g}}<extra></extra>")
    figure = go.Figure(heatmap)
    figure.update_layout(title=dict(text=title), margin=MARGIN, height=420, plot_bgcolor=NO_SPECTRUM,
                         clickmode="event", shapes=pixel_marker(*selected) if selected else [],
                         annotations=[_no_spectrum_note()] if np.isnan(z).any() else [],
                         xaxis=dict(title=dict(text="x (pixel)"), constrain="domain", showgrid=False, zeroline=False),
                         yaxis=dict(title=dict(text="y (pixel)"), autorange="reversed", scaleanchor="x",
                                    constrain="domain", showgrid=False, zeroline=False))
    return figure


def _no_spectrum_note() -> dict:
    return dict(text="grey: pixel without a spectrum", xref="paper", yref="paper", x=1, y=-0.13, showarrow=False,
                xanchor="right", font=dict(size=11, color="#555"))


def pixel_marker(x: int, y: int) -> list[dict]:
    """The outline of one pixel, as the heatmap's layout.shapes."""
    return [dict(type="rect", x0=x - 0.5, x1=x + 0.5, y0=y - 0.5, y1=y + 0.5, line=dict(color="#e4572e", width=2))]


def mean_spectrum_figure(preview: Preview, peaks: list[tuple[float, float]] = (), sticks: bool = False) -> go.Figure:
    """The mean spectrum, its top peaks marked (a click on one, or on the line, asks for an ion
    image); centroid data (sticks) as sticks, never a line joining peaks across empty m/z."""
    pixels = int((preview.index >= 0).sum())
    how = f"summed into {len(preview.mz):,} m/z bins, " if preview.binned else ""
    figure = spectrum_figure(preview.mz, preview.mean, f"Mean spectrum ({how}{pixels:,} pixels)", sticks=sticks)
    if peaks:
        figure.add_trace(go.Scatter(x=[p[0] for p in peaks], y=[p[1] for p in peaks], mode="markers",
                                    marker=dict(color=PEAK, size=7), name="top peaks",
                                    hovertemplate="peak m/z %{x:.4f}<br>click for its ion image<extra></extra>"))
    figure.update_layout(showlegend=False, clickmode="event")
    return figure


def pixel_figure(mz: np.ndarray, intensity: np.ndarray, x: int, y: int, sticks: bool) -> go.Figure:
    """One pixel's spectrum; a processed-mode or centroid spectrum (sparse m/z points) as sticks."""
    return spectrum_figure(mz, intensity, f"Spectrum at pixel ({x}, {y})", sticks=sticks)


def spectrum_figure(mz: np.ndarray, intensity: np.ndarray, title: str, sticks: bool = False) -> go.Figure:
    mz, intensity = thinned(np.asarray(mz, dtype=float), np.asarray(intensity, dtype=float))
    if sticks:
        mz, intensity = _sticks(mz, intensity)
    trace = go.Scatter(x=mz, y=intensity, mode="lines", line=dict(color=ACCENT, width=1),
                       hovertemplate="m/z %{x:.4f}<br>intensity %{y:.4g}<extra></extra>")
    figure = go.Figure(trace)
    figure.update_layout(title=dict(text=title), margin=MARGIN, height=300, plot_bgcolor="white",
                         xaxis=dict(title=dict(text="m/z"), showline=True, linecolor="#999"),
                         yaxis=dict(title=dict(text="Intensity (a.u.)"), rangemode="tozero", gridcolor="#eee"))
    return figure


def thinned(mz: np.ndarray, intensity: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points: in each of `limit` equal stretches, the point of highest intensity."""
    if len(mz) <= limit:
        return mz, intensity
    size = math.ceil(len(mz) / limit)
    padded = np.full(size * math.ceil(len(mz) / size), -np.inf)
    padded[:len(intensity)] = intensity
    best = padded.reshape(-1, size).argmax(axis=1) + np.arange(0, len(padded), size)
    return mz[best], intensity[best]


def _sticks(mz: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertical lines from 0 to each point, as one trace (NaN breaks the line between sticks)."""
    xs = np.column_stack([mz, mz, np.full(len(mz), np.nan)]).ravel()
    ys = np.column_stack([np.zeros(len(mz)), intensity, np.full(len(mz), np.nan)]).ravel()
    return xs, ys


def empty_figure(note: str, height: int = 300) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(height=height, margin=MARGIN, xaxis=dict(visible=False), yaxis=dict(visible=False),
                         annotations=[dict(text=note, showarrow=False, font=dict(color="#777"))])
    return figure
