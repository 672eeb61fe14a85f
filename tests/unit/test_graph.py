"""Network intelligence on graphs with known answers (ducats.domain.graph). No services;
tests/integration/test_analyze.py runs the same through PostgreSQL and Redis."""
from __future__ import annotations

import itertools

from ducats.domain.graph import GROWING, analyze, match


def clique(names: list[str], weight: int = 1) -> list[tuple[str, str, int]]:
    return [(a, b, weight) for a, b in itertools.permutations(names, 2)]


def test_two_disjoint_cliques_are_two_components_and_two_communities() -> None:
    a, b = [f"a{i}" for i in range(6)], [f"b{i}" for i in range(5)]
    result = analyze(clique(a) + clique(b))
    assert (result.nodes, result.edges) == (11, 30 + 20)
    assert (result.components, result.largest_component) == (2, 6)
    assert sorted(sorted(c.members) for c in result.communities) == [sorted(a), sorted(b)]


def test_the_centre_of_a_star_has_the_top_pagerank() -> None:
    leaves = [f"leaf{i}" for i in range(12)]
    edges = [(leaf, "centre", 5) for leaf in leaves] + [("centre", leaf, 1) for leaf in leaves]
    result = analyze(edges)
    assert result.influence[0][0] == "centre"
    assert result.influence[0][1] > 3 * result.influence[1][1]
    assert result.components == 1


def test_pagerank_follows_the_weights() -> None:
    # x sends 100 ducats to rich and 1 to poor: rich ranks above poor
    result = analyze([("x", "rich", 100), ("x", "poor", 1), ("rich", "x", 1), ("poor", "x", 1)])
    ranks = dict(result.influence)
    assert ranks["rich"] > ranks["poor"]


def test_the_same_edges_give_the_same_communities() -> None:
    edges = clique([f"a{i}" for i in range(8)]) + clique([f"b{i}" for i in range(8)]) + [("a0", "b0", 1)]
    first, again = analyze(edges), analyze(list(reversed(edges)))
    assert [c.members for c in first.communities] == [c.members for c in again.communities]


def test_a_community_that_doubles_is_growing_and_keeps_its_id() -> None:
    a, b = [f"a{i}" for i in range(5)], [f"b{i}" for i in range(5)]
    before = analyze(clique(a) + clique(b))
    run1, next_id = match(before, {}, {}, next_id=0)
    assert all(c.previous_size is None for c in run1) and next_id == 2
    ids = {c.members[0][0]: c.id for c in run1}
    a2 = a + [f"a{i}" for i in range(5, 10)]   # a doubles, b stays
    after = analyze(clique(a2) + clique(b))
    run2, _ = match(after, before.membership() | {}, {c.id: c.size for c in run1}, next_id=next_id)
    grown = next(c for c in run2 if "a0" in c.members)
    assert grown.id == ids["a"] and grown.previous_size == 5 and grown.growth == 2.0 >= GROWING
    assert grown.summary()["growing"] is True
    same = next(c for c in run2 if "b0" in c.members)
    assert same.id == ids["b"] and same.growth == 1.0 and same.summary()["growing"] is False


def test_two_communities_joined_are_a_merge_and_one_broken_is_a_split() -> None:
    a, b = [f"a{i}" for i in range(5)], [f"b{i}" for i in range(5)]
    two = analyze(clique(a) + clique(b))
    run1, next_id = match(two, {}, {}, next_id=0)
    sizes = {c.id: c.size for c in run1}
    one = analyze(clique(a + b))
    merged, next_id = match(one, two.membership(), sizes, next_id=next_id)
    assert len(merged) == 1 and merged[0].merged_from == sorted(sizes)
    # and apart again: the one community splits in two; the larger piece keeps the id
    big, small = a + b[:2], b[2:]
    back = analyze(clique(big) + clique(small))
    split, _ = match(back, one.membership(), {merged[0].id: merged[0].size}, next_id=next_id)
    keeper = next(c for c in split if "a0" in c.members)
    assert keeper.id == merged[0].id and keeper.split_from == merged[0].id
    other = next(c for c in split if c is not keeper)
    assert other.id == next_id and other.previous_size is None


def test_an_empty_graph_is_an_empty_answer() -> None:
    result = analyze([])
    assert (result.nodes, result.components, result.communities) == (0, 0, [])
