"""The cells of a mould's pixel grid: how a 2 x 2 block of mask pixels is triangulated, and which masks can be.

A *cell* is the square between four pixel centres. :func:`case_tables` lists the triangles of every cell
case the stitcher (:mod:`mould.recon.stitch`) meets: full or three-pixel cells, each grid edge bridged or
torn by a depth jump. :func:`remove_pinches` drops the mask pixels whose covered cells touch only at a corner,
which no closed, edge-manifold surface can follow.
"""

from __future__ import annotations

import functools

import numpy as np

TL, TR, BR, BL = 0, 1, 2, 3
"""Corners of a cell in cycle order (with rows going down, this order winds to a normal along +z)."""


# -- case tables ----------------------------------------------------------------------------------------------
# Local vertex slots of a cell: 0-3 the corners TL, TR, BR, BL; 4 + 2e + s the midpoint of grid edge e
# (0 top TL->TR, 1 right TR->BR, 2 bottom BR->BL, 3 left BL->TL) at the depth of its start (s = 0) or end
# (s = 1) corner in cycle order.
EDGE_CORNERS = ((TL, TR), (TR, BR), (BR, BL), (BL, TL))
FULL_DIAGONAL_13 = 16
"""Case index of a jump-free full cell split along TR-BL instead of TL-BR."""


def _fan(polygon: list[int], apex: int = 0) -> list[tuple[int, int, int]]:
    polygon = polygon[apex:] + polygon[:apex]
    return [(polygon[0], polygon[i], polygon[i + 1]) for i in range(1, len(polygon) - 1)]


def _cell_triangles(missing: int | None, jumps: tuple[bool, bool, bool, bool], diagonal_13: bool = False):
    """Triangles (slot triples, wound TL->TR->BR) of one cell: the marching-squares split of
    :mod:`mould.recon.stitch`'s module doc."""
    corners = [c for c in (TL, TR, BR, BL) if c != missing]
    cycle: list[int] = []  # slots around the cell
    jump_at: list[int] = []  # positions in ``cycle`` of the first midpoint of each jump edge
    for index, corner in enumerate(corners):
        cycle.append(corner)
        following = corners[(index + 1) % len(corners)]
        edge = next((e for e, pair in enumerate(EDGE_CORNERS) if pair == (corner, following)), None)
        if edge is not None and jumps[edge]:
            jump_at.append(len(cycle))
            cycle += [4 + 2 * edge, 5 + 2 * edge]
    if not jump_at:
        if len(corners) == 4:
            return [(TL, TR, BL), (TR, BR, BL)] if diagonal_13 else [(TL, TR, BR), (TL, BR, BL)]
        return [tuple(corners)]
    if len(jump_at) == 1:
        # A lone jump (the other edges' small steps add up to it) is bridged inside the cell: one polygon,
        # fanned from the corner before the jump's start, which sees every other vertex of the cycle.
        return _fan(cycle, apex=(jump_at[0] - 2) % len(cycle))
    triangles = []
    count = len(cycle)
    for k, position in enumerate(jump_at):
        # The run of corners after this jump edge, up to the next jump edge, with its two midpoints.
        following = jump_at[(k + 1) % len(jump_at)]
        run = [cycle[(position + 1) % count]]
        i = (position + 2) % count
        while i != following:
            run.append(cycle[i])
            i = (i + 1) % count
        run.append(cycle[following])
        triangles += _fan(run, apex=1)  # apex on the run's first corner
    middle = [slot for position in jump_at for slot in (cycle[position], cycle[position + 1])]
    triangles += _fan(middle)  # the wall along the rays between the parts
    return triangles


@functools.lru_cache(maxsize=1)
def case_tables() -> tuple[tuple[tuple[int, int, int], ...], ...]:
    """Triangles of every cell case, as local slot triples.

    Case index: full cells 0-15 (bit e set = edge e is a jump), 16 (jump-free, TR-BL diagonal);
    three-pixel cells 32 + 4 * missing + bits, bit 0 / 1 = a jump on the first / second grid edge after
    the missing corner in cycle order.
    """
    tables: list[tuple] = [()] * 48
    for bits in range(16):
        tables[bits] = tuple(_cell_triangles(None, tuple(bool(bits >> e & 1) for e in range(4))))
    tables[FULL_DIAGONAL_13] = tuple(_cell_triangles(None, (False,) * 4, diagonal_13=True))
    for missing in range(4):
        for bits in range(4):
            jumps = [False] * 4
            jumps[(missing + 1) % 4] = bool(bits & 1)
            jumps[(missing + 2) % 4] = bool(bits & 2)
            tables[32 + 4 * missing + bits] = tuple(_cell_triangles(missing, tuple(jumps)))
    return tuple(tables)


# -- masks ----------------------------------------------------------------------------------------------------
def cell_corners(mask: np.ndarray) -> np.ndarray:
    """(N-1, N-1, 4) bool: which corners (TL, TR, BR, BL) of each cell lie in the mask."""
    return np.stack([mask[:-1, :-1], mask[:-1, 1:], mask[1:, 1:], mask[1:, :-1]], axis=-1)


def sector_ring(mask: np.ndarray) -> np.ndarray:
    """(N, N, 8) bool: which 45° sectors around each pixel centre are covered by triangles, in angular order
    E-SE, SE-S, S-SW, SW-W, W-NW, NW-N, N-NE, NE-E (rows going down)."""
    n = mask.shape[0]
    corners = cell_corners(mask)
    count = corners.sum(axis=-1)
    full = count == 4
    three = count == 3

    def covers(corner: int, horizontal: int, vertical: int, diagonal: int) -> tuple[np.ndarray, np.ndarray]:
        # Sectors at ``corner`` along its horizontal and its vertical edge: a full cell covers both; a
        # three-pixel cell covers both if the missing corner is the diagonal one, else only the sector
        # along the edge whose far end is present.
        here = corners[..., corner]
        missing_h = three & ~corners[..., horizontal]
        missing_v = three & ~corners[..., vertical]
        missing_d = three & ~corners[..., diagonal]
        along_h = here & (full | missing_d | missing_v)
        along_v = here & (full | missing_d | missing_h)
        return along_h, along_v

    ring = np.zeros((n + 2, n + 2, 8), bool)  # padded: cells beyond the crop cover nothing
    inner = ring[1:-1, 1:-1]
    # p is TL of the cell to its south-east (cell (r, c)), TR of the south-west one (r, c-1), BR of the
    # north-west one (r-1, c-1), BL of the north-east one (r-1, c).
    h, v = covers(TL, TR, BL, BR)
    inner[:-1, :-1, 0], inner[:-1, :-1, 1] = h, v
    h, v = covers(TR, TL, BR, BL)
    inner[:-1, 1:, 3], inner[:-1, 1:, 2] = h, v
    h, v = covers(BR, BL, TR, TL)
    inner[1:, 1:, 4], inner[1:, 1:, 5] = h, v
    h, v = covers(BL, BR, TL, TR)
    inner[1:, :-1, 7], inner[1:, :-1, 6] = h, v
    return inner


def remove_pinches(mask: np.ndarray, max_rounds: int = 1000) -> np.ndarray:
    """The mask without pixels whose covered sectors form more than one arc (see the module doc).

    Args:
        mask: (N, N) bool.

    Returns:
        (N, N) bool, a subset of ``mask``; every pixel's covered sectors are empty, one arc or the full ring.
    """
    mask = mask.copy()
    for _ in range(max_rounds):
        ring = sector_ring(mask)
        arcs = np.sum(ring & ~np.roll(ring, 1, axis=-1), axis=-1)
        pinched = mask & (arcs > 1)
        if not pinched.any():
            return mask
        mask &= ~pinched
    raise RuntimeError("remove_pinches: did not converge")  # each round removes a pixel: unreachable
