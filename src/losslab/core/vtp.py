"""A 2-D loss surface as a ParaView file: VTK's XML PolyData format (``.vtp``), as Li et al. (2018)'s
``h52vtp.py`` writes it for their rendered 3-D landscapes.

The layout (VTK file formats, "PolyData"): one ``<Piece>`` holding

* ``<Points>``: one point per grid node, ``(x, y, z)`` with ``z`` the plotted value (the loss, or
  ``log(loss + 0.1)`` with ``log``, Li et al.'s shift), a ``Float32`` array of 3 components;
* ``<Polys>``: one quadrilateral per grid cell, its four corners counter-clockwise as ``connectivity`` and
  the running end of each cell's list as ``offsets`` (``4, 8, 12, ...``);
* ``<PointData>``: the plotted value at every point (``Scalars``, named after the surface), and
  ``<CellData>``: the mean of each cell's four corners (``averaged <name>``), as h52vtp writes them;
* empty ``<Verts>``, ``<Lines>``, ``<Strips>``.

Conventions: ``z[i, j]`` is the value at ``(x[i], y[j])`` (losslab's surface files); point ``p = j * nx + i``
(x varies fastest, as h52vtp's ``meshgrid`` ravel), so cell ``(i, j)`` has corners ``p, p + 1, p + nx + 1,
p + nx``. ``zmax`` clips the value before the log (h52vtp's order); a non-finite value (a diverged point) is
refused, as ParaView would draw it as garbage. Interpolation is off by default (the file holds the computed
points); ``interp=n`` resamples the grid to ``n`` x ``n`` evenly spaced points by the interpolating bicubic
spline (h52vtp's ``--interp``, there ``scipy``'s since removed ``interp2d``; here
``scipy.interpolate.RectBivariateSpline`` with no smoothing, which reproduces a cubic exactly), before the
clip and the log. Values are written in ASCII with ``repr`` precision, so they read back exactly as float32.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import scipy.interpolate

from losslab import io as lio

LOG_SHIFT = 0.1  # h52vtp: log(z + 0.1)


def vtp_values(z: np.ndarray, *, log: bool = False, zmax: float | None = None) -> np.ndarray:
    """The plotted value of every grid node: ``z`` clipped at ``zmax`` (if given), then ``log(z + 0.1)`` with
    ``log``."""
    z = np.asarray(z, dtype=np.float64)
    if not np.all(np.isfinite(z)):
        raise ValueError(f"the surface has {int(np.sum(~np.isfinite(z)))} non-finite value(s): a VTP file "
                         "needs finite heights (clip with zmax)")
    if zmax is not None:
        z = np.minimum(z, zmax)
    if log:
        if np.any(z + LOG_SHIFT <= 0):
            raise ValueError(f"log: every value must be above -{LOG_SHIFT}, the smallest is {float(z.min())}")
        z = np.log(z + LOG_SHIFT)
    return z


def interpolated(x: np.ndarray, y: np.ndarray, z: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x', y', z')``: ``z`` resampled on ``n`` x ``n`` evenly spaced points over the same ranges by the
    interpolating bicubic spline (at least 4 points per axis)."""
    if n < 2:
        raise ValueError(f"interp {n}: at least 2 points per side")
    if len(x) < 4 or len(y) < 4:
        raise ValueError(f"interp: a bicubic spline needs at least 4 x 4 grid points, got {len(x)} x {len(y)}")
    spline = scipy.interpolate.RectBivariateSpline(x, y, z, kx=3, ky=3, s=0)
    xn, yn = np.linspace(x[0], x[-1], n), np.linspace(y[0], y[-1], n)
    return xn, yn, spline(xn, yn)


def _array(name: str, values: np.ndarray, dtype: str, components: int = 1, per_line: int = 6) -> str:
    flat = np.asarray(values).reshape(-1)
    if dtype == "Float32":
        texts = [repr(float(v)) for v in flat.astype(np.float32)]
    else:
        texts = [str(int(v)) for v in flat]
    lines = [" ".join(texts[k:k + per_line * components]) for k in range(0, len(texts), per_line * components)]
    rng = f' RangeMin="{flat.min()!r}" RangeMax="{flat.max()!r}"' if flat.size else ""
    body = "".join(f"          {line}\n" for line in lines)
    return (f'        <DataArray type="{dtype}" Name="{name}" NumberOfComponents="{components}" format="ascii"'
            f'{rng}>\n{body}        </DataArray>\n')


def _empty(tag: str) -> str:
    return (f"      <{tag}>\n" + _array("connectivity", np.zeros(0, int), "Int64")
            + _array("offsets", np.zeros(0, int), "Int64") + f"      </{tag}>\n")


def vtp_text(x: Sequence[float], y: Sequence[float], z: np.ndarray, *, name: str = "train_loss",
             log: bool = False, zmax: float | None = None, interp: int | None = None) -> str:
    """The ``.vtp`` XML of the surface ``z[i, j]`` at ``(x[i], y[j])`` (see the module doc)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    z = np.asarray(z)
    if x.ndim != 1 or y.ndim != 1 or z.shape != (len(x), len(y)):
        raise ValueError(f"z has shape {z.shape}, expected (len(x), len(y)) = ({len(x)}, {len(y)})")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"a VTP surface needs at least 2 x 2 grid points, got {len(x)} x {len(y)}")
    if not name or any(c in name for c in '<>&"'):
        raise ValueError(f"surface name {name!r}: must be non-empty, without <, >, & or quotes")
    if interp is not None:
        vtp_values(z)  # refuse non-finite values before the spline spreads them
        x, y, z = interpolated(x, y, np.asarray(z, dtype=np.float64), int(interp))
    values = vtp_values(z, log=log, zmax=zmax)
    nx, ny = len(x), len(y)
    heights = values.T.reshape(-1)  # point j * nx + i
    xx, yy = np.meshgrid(x, y)  # [j, i]
    points = np.stack([xx.reshape(-1), yy.reshape(-1), heights], axis=1)
    p = (np.arange(ny - 1)[:, None] * nx + np.arange(nx - 1)[None, :]).reshape(-1)
    quads = np.stack([p, p + 1, p + nx + 1, p + nx], axis=1)
    cells = heights[quads].mean(axis=1)
    n_points, n_polys = nx * ny, len(quads)
    return ('<?xml version="1.0"?>\n'
            '<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
            '  <PolyData>\n'
            f'    <Piece NumberOfPoints="{n_points}" NumberOfVerts="0" NumberOfLines="0" NumberOfStrips="0" '
            f'NumberOfPolys="{n_polys}">\n'
            f'      <PointData Scalars="{name}">\n' + _array(name, heights, "Float32") + '      </PointData>\n'
            f'      <CellData Scalars="averaged {name}">\n' + _array(f"averaged {name}", cells, "Float32")
            + '      </CellData>\n'
            '      <Points>\n' + _array("Points", points, "Float32", components=3, per_line=2)
            + '      </Points>\n'
            + _empty("Verts") + _empty("Lines") + _empty("Strips")
            + '      <Polys>\n' + _array("connectivity", quads, "Int64", per_line=8)
            + _array("offsets", 4 * np.arange(1, n_polys + 1), "Int64") + '      </Polys>\n'
            '    </Piece>\n'
            '  </PolyData>\n'
            '</VTKFile>\n')


def write_vtp(path: str | os.PathLike, x: Sequence[float], y: Sequence[float], z: np.ndarray, *,
              name: str = "train_loss", log: bool = False, zmax: float | None = None,
              interp: int | None = None) -> None:
    """Write :func:`vtp_text` to ``path`` atomically."""
    lio.write_text(path, vtp_text(x, y, z, name=name, log=log, zmax=zmax, interp=interp))
