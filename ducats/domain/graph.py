"""Network intelligence over the holder graph (docs/network.md, "Analysis").

Pure functions of an edge list, on python-igraph (compiled C) and leidenalg:

- ``analyze``: weakly connected components ("collective intelligence"),
  PageRank over the directed graph weighted by ducats moved ("influence flow"),
  and Leiden communities on the undirected weighted graph ("emergence
  patterns"), with a fixed seed so that the same edges give the same answer;
- ``match``: each community of a run takes the id of the previous run's
  community it shares the most members with, if that overlap is at least half
  of the smaller of the two; a previous community matched by several is a split
  (the largest keeps its id), a new one that holds at least half of several
  previous ones is a merge.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import igraph as ig
import leidenalg

SEED = 20261202          # leidenalg's seed: a given edge set always gives the same partition
DAMPING = 0.85           # PageRank's damping factor, the usual one
TOP_HOLDERS = 20         # holders by influence kept per run
MIN_COMMUNITY = 3        # smaller communities are not reported (still matched)
OVERLAP = 0.5            # of the smaller community's members, for a match
GROWING = 1.5            # growth (size / matched previous size) at which a community "grows fast"


@dataclass(slots=True)
class Community:
    id: int
    size: int
    members: list[str]
    previous_size: int | None = None   # the matched previous community's size; None: new
    merged_from: list[int] = field(default_factory=list)
    split_from: int | None = None

    @property
    def growth(self) -> float | None:
        return None if not self.previous_size else round(self.size / self.previous_size, 4)

    def summary(self, *, members: int = 10) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "previousSize": self.previous_size, "growth": self.growth,
                "growing": bool(self.growth and self.growth >= GROWING), "new": self.previous_size is None,
                "mergedFrom": self.merged_from, "splitFrom": self.split_from, "sample": self.members[:members]}


@dataclass(slots=True)
class Analysis:
    nodes: int
    edges: int
    components: int
    largest_component: int
    influence: list[tuple[str, float]]        # the top holders by PageRank, highest first
    communities: list[Community]              # largest first; ids 0..n-1 until ``match`` gives theirs

    def membership(self) -> dict[str, int]:
        """holder -> the id of its community."""
        return {h: c.id for c in self.communities for h in c.members}


def analyze(edges: Iterable[tuple[str, str, int]], *, top: int = TOP_HOLDERS) -> Analysis:
    """``edges``: (sender, receiver, weight) with one row per directed pair."""
    names: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    weights: list[float] = []
    for s, r, w in edges:
        pairs.append((names.setdefault(s, len(names)), names.setdefault(r, len(names))))
        weights.append(float(w))
    holders = list(names)
    g = ig.Graph(n=len(holders), edges=pairs, directed=True)
    if not holders:
        return Analysis(0, 0, 0, 0, [], [])
    comps = g.connected_components(mode="weak")
    rank = g.pagerank(weights=weights, damping=DAMPING, directed=True)
    order = sorted(range(len(holders)), key=lambda i: (-rank[i], holders[i]))[:top]
    part = leidenalg.find_partition(_undirected(g, weights), leidenalg.ModularityVertexPartition, weights="weight", seed=SEED)
    groups: dict[int, list[str]] = {}
    for i, c in enumerate(part.membership):
        groups.setdefault(c, []).append(holders[i])
    ranked = sorted(groups.values(), key=lambda ms: (-len(ms), min(ms)))
    communities = [Community(id=i, size=len(ms), members=sorted(ms)) for i, ms in enumerate(ranked)]
    return Analysis(nodes=len(holders), edges=len(pairs), components=len(comps),
                    largest_component=max(comps.sizes()),
                    influence=[(holders[i], round(rank[i], 8)) for i in order],
                    communities=communities)


def _undirected(g: ig.Graph, weights: Sequence[float]) -> ig.Graph:
    """The graph without direction, a pair's two directions summed into one edge."""
    g = g.copy()
    g.es["weight"] = list(weights)
    g.to_undirected(mode="collapse", combine_edges={"weight": "sum"})
    return g


def match(new: Analysis, previous: Mapping[str, int], previous_sizes: Mapping[int, int], *,
          next_id: int) -> tuple[list[Community], int]:
    """Give ``new``'s communities their ids, from ``previous`` (holder -> community id of
    the run before, whose sizes are ``previous_sizes``). Returns them and the next free id."""
    claims: dict[int, list[tuple[int, int]]] = {}   # previous id -> [(overlap, new index)]
    best: dict[int, tuple[int, int] | None] = {}
    for i, c in enumerate(new.communities):
        overlaps = Counter(previous[h] for h in c.members if h in previous)
        candidates = [(n, pid) for pid, n in overlaps.items()
                      if n >= OVERLAP * min(c.size, previous_sizes.get(pid, n))]
        best[i] = max(candidates, key=lambda t: (t[0], -t[1])) if candidates else None
        if best[i] is not None:
            claims.setdefault(best[i][1], []).append((best[i][0], i))  # type: ignore[index]
        c.merged_from = sorted(pid for pid, n in overlaps.items()
                               if n >= OVERLAP * previous_sizes.get(pid, n)) if len(overlaps) > 1 else []
        if len(c.merged_from) < 2:
            c.merged_from = []
    out: list[Community] = []
    for i, c in enumerate(new.communities):
        b = best[i]
        keeper = b is not None and max(claims[b[1]], key=lambda t: (new.communities[t[1]].size, t[0], -t[1]))[1] == i
        if b is not None and keeper:
            c.id, c.previous_size = b[1], previous_sizes.get(b[1])
        else:
            c.id, next_id = next_id, next_id + 1
        if b is not None and len(claims[b[1]]) > 1:
            c.split_from = b[1]
        out.append(c)
    return out, next_id
