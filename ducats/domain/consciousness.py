"""The consciousness model. Every rule and constant of it lives in this module.

A ducat's consciousness is a pure function of the accepted log: the ledger
(the single writer, with one total order) evolves it for every ducat a transfer
moves, in ``seq`` order, in the same database transaction as the move. Nothing
here reads a clock or draws a random number, and every float that is stored is
rounded to 6 digits (so that a last-bit difference between two libm ``exp``
could only show at a rounding boundary): the same log gives the same state.

Transfer impact
    How much a transfer stirs the ducats it moves: ``log(1 + n) / log(1 +
    10_000)`` for ``n`` ducats moved together, in [0, 1]. Log scale, because
    moving ten thousand at once is not ten thousand times as significant as one.

Counters (per ducat, evolved by every move)
    ``transfer_count``; ``impact_sum`` (the sum of the impacts of its
    transfers, rounded to 6 digits after each addition so that no batch cut
    can change a digit); ``network_hops``: moves to a holder other than the
    ducat's *previous* holder (the one before the current), so ping-pong
    between two holders counts once, while reaching new parts of the network
    counts every time.

Awareness and level (recomputed from the counters after every move)
    ``self = 1 - exp(-transfer_count / 20)``: experience; 63 % after 20 moves.
    ``purpose = 1 - exp(-impact_sum / 5)``: having mattered; 63 % after five
    full-size transfers, or about 66 single-ducat ones.
    ``network = 1 - exp(-network_hops / 10)``: breadth; 63 % after 10 hops.
    ``level = round(0.4 * self + 0.35 * purpose + 0.25 * network, 6)``, from
    the unrounded awareness (each saturates, so level is in [0, 1)). Own
    experience weighs most; being moved in meaningful transfers next; breadth
    least, because a ducat does not choose its holders. All three only grow,
    so level and stage never go down.

Evolution stage (0..5)
    The number of floors in ``STAGE_FLOORS = (0.1, 0.25, 0.45, 0.7, 0.9)``
    that ``level`` has reached. The steps widen, so each stage takes more
    living than the last. ``lastEvolution`` is the event timestamp of the move
    that last raised the stage.

Resonance frequency
    ``round(0.01 + 0.09 * h * level, 6)`` with ``h = frac(id * phi)`` computed
    exactly as Fibonacci hashing, ``(id * 0x9E3779B97F4A7C15 mod 2**64) /
    2**64``: every ducat starts at 0.01 and, as it awakens, spreads towards
    its own frequency in [0.01, 0.1); the ids of one batch land far apart.

Temperature (event time, never the wall clock)
    The ledger's watermark ``W`` is the latest timestamp of any accepted event
    (mint or transfer). A ducat whose last transfer ``L`` has ``W - L <= 1 h``
    is hot, ``<= 24 h`` warm, else cold (never moved: cold). The sink sets the
    temperature of the ducats a batch moves from ``L`` and the batch's final
    ``W``, then cools the others whose ``L`` crossed a boundary while ``W``
    advanced from the previous batch's value. Why the result does not depend on
    how the log is cut into batches: after each batch every ducat's temperature
    equals ``temperature(L, W)`` for the prefix applied so far (moved ducats
    are computed so; unmoved warm or hot ones are recomputed by the cooling;
    unmoved cold ones stay cold because ``W`` only grows and temperature only
    falls as ``W`` grows). ``L`` and ``W`` are themselves functions of the
    prefix, so at the end of any cut the state is ``temperature(L_final,
    W_final)``. Timestamps may arrive out of order: a moved ducat is hot only
    if its own timestamp is within an hour of ``W``.

Memories
    Each (ducat, transfer) has candidate memories; the single most significant
    one is kept (ties: the first listed), and only if its significance is at
    least ``MEMORY_THRESHOLD``:

    ==================  =====================  =====================================
    kind                significance           when
    ==================  =====================  =====================================
    ``left_treasury``   0.7                    the sender is a treasury holder (``DUCATS_TREASURY``)
    ``first_transfer``  0.6                    the ducat's first move ever
    ``stage_up``        0.5 + 0.1 * new stage  the move raised the stage
    ``reawakened``      0.55                   it rested >= 24 h (event time) before
    ``great_transfer``  the transfer's impact  always (stored from 100 ducats up)
    ==================  =====================  =====================================

    A memory's id is the ``seq`` of its transfer, so a replay writes identical
    rows. Similar memories aggregate: a new memory with the same kind and
    counterparty (the receiver; none for ``stage_up``) as a live (not
    compressed) row of the ducat adds one occurrence to it; the row keeps its
    id and time, takes the higher significance, and the text of its most
    significant occurrence (the earliest among equals). Old ones compress:
    when a ducat would hold more than ``MAX_MEMORIES_PER_DUCAT`` rows, its
    oldest live rows fold into one compressed ``summary`` row (the id and time
    of its oldest member, the sum of occurrences, the highest significance),
    so a ducat holds at most that many rows. The rules run memory by memory in
    log order on the rows stored so far, so the result is the same whatever
    the batch cut.

Census buckets
    temperature (cold, warm, hot), stage ('0'..'5') and level decile ('0.0' ..
    '0.9', from the 6-digit level: ``floor(level * 10)``; in SQL
    ``floor(consciousness_level::numeric * 10)`` gives the same, since a real
    converts to numeric with 6 significant digits).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_DUCATS_PER_TRANSFER = 10_000
_IMPACT_SCALE = math.log1p(MAX_DUCATS_PER_TRANSFER)

SELF_SCALE = 20.0          # transfers for self-awareness to reach 1 - 1/e
PURPOSE_SCALE = 5.0        # impact for purpose to reach 1 - 1/e
NETWORK_SCALE = 10.0       # network hops for network awareness to reach 1 - 1/e
WEIGHT_SELF, WEIGHT_PURPOSE, WEIGHT_NETWORK = 0.4, 0.35, 0.25
STAGE_FLOORS = (0.1, 0.25, 0.45, 0.7, 0.9)  # level at which stages 1..5 begin
RESONANCE_BASE, RESONANCE_SPAN = 0.01, 0.09
_PHI_64 = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: Fibonacci hashing

CENSUS_DIMENSIONS = ("temperature", "stage", "level")
MINTED = ("cold", "0", "0.0")  # a new ducat's bucket in each of them

HOT_WITHIN = dt.timedelta(hours=1)
WARM_WITHIN = dt.timedelta(hours=24)

MEMORY_THRESHOLD = 0.5
MAX_MEMORIES_PER_DUCAT = 8
REST_BEFORE_REAWAKENING = WARM_WITHIN  # rested long enough to have gone cold
SIGNIFICANCE_LEFT_TREASURY = 0.7
SIGNIFICANCE_FIRST_TRANSFER = 0.6
SIGNIFICANCE_REAWAKENED = 0.55
SUMMARY = "summary"


def transfer_impact(ducat_count: int) -> float:
    """consciousnessImpact of a transfer of ``ducat_count`` ducats, in [0, 1]."""
    if ducat_count < 1:
        return 0.0
    return round(min(1.0, math.log1p(ducat_count) / _IMPACT_SCALE), 6)


def awareness(transfer_count: int, impact_sum: float, network_hops: int) -> tuple[float, float, float]:
    """(self, purpose, network), unrounded."""
    return (1.0 - math.exp(-transfer_count / SELF_SCALE), 1.0 - math.exp(-impact_sum / PURPOSE_SCALE),
            1.0 - math.exp(-network_hops / NETWORK_SCALE))


def level_of(transfer_count: int, impact_sum: float, network_hops: int) -> float:
    # the sum of WEIGHT * awareness, written out: this runs for every ducat moved
    return round(WEIGHT_SELF * (1.0 - math.exp(-transfer_count / SELF_SCALE))
                 + WEIGHT_PURPOSE * (1.0 - math.exp(-impact_sum / PURPOSE_SCALE))
                 + WEIGHT_NETWORK * (1.0 - math.exp(-network_hops / NETWORK_SCALE)), 6)


def stage_of(level: float) -> int:
    stage = 0
    for floor in STAGE_FLOORS:
        if level < floor:
            break
        stage += 1
    return stage


def decile_of(level: float) -> str:
    """Census bucket of a 6-digit level: '0.0' .. '0.9' (exact integer arithmetic)."""
    return f"0.{min(9, round(level * 1_000_000) // 100_000)}"


def resonance_of(ducat: int, level: float) -> float:
    h = (ducat * _PHI_64 % (1 << 64)) / (1 << 64)
    return round(RESONANCE_BASE + RESONANCE_SPAN * h * level, 6)


def document(ducat: int, *, transfer_count: int, impact_sum: float, network_hops: int, stage: int, level: float,
             last_evolution: str | None) -> dict[str, object] | None:
    """A ducat's consciousness as the API shows it, from its stored columns (None until it
    first moves): awareness rounded to 6 places; ``last_evolution`` as the caller formats times."""
    if transfer_count == 0:
        return None
    s, p, n = awareness(transfer_count, impact_sum, network_hops)
    return {"awareness": {"self": round(s, 6), "purpose": round(p, 6), "network": round(n, 6)},
            "evolutionStage": stage, "resonanceFrequency": resonance_of(ducat, level), "lastEvolution": last_evolution}


def temperature_of(last_at: dt.datetime | None, watermark: dt.datetime | None) -> str:
    if last_at is None or watermark is None:
        return "cold"
    age = watermark - last_at
    return "hot" if age <= HOT_WITHIN else "warm" if age <= WARM_WITHIN else "cold"


@dataclass(frozen=True, slots=True)
class Move:
    """One accepted transfer, as every ducat it moves sees it."""

    seq: int
    sender: str
    receiver: str
    count: int
    impact: float
    at: dt.datetime
    from_treasury: bool = False  # the sender is one of DUCATS_TREASURY's holders


@dataclass(slots=True)
class DucatState:
    """What the model keeps per ducat (fields in the order of the ducats columns the sink loads)."""

    id: int
    holder: str
    previous_holder: str | None = None
    transfer_count: int = 0
    impact_sum: float = 0.0
    network_hops: int = 0
    level: float = 0.0
    stage: int = 0
    temperature: str = "cold"
    last_seq: int = 0
    last_at: dt.datetime | None = None
    memory_count: int = 0
    evolved_at: dt.datetime | None = None  # set when a move of this batch raised the stage
    origin: tuple[str, int, float] = ("cold", 0, 0.0)  # temperature, stage and level before the batch


@dataclass(slots=True)
class Memory:
    """One stored memory row of a ducat (``dirty``: changed since it was loaded)."""

    ducat_id: int
    memory_id: int
    created_at: dt.datetime
    kind: str
    counterparty: str | None
    memory: str
    significance: float
    occurrences: int = 1
    compressed: bool = False
    dirty: bool = field(default=True, compare=False)


def evolve(st: DucatState, move: Move) -> Memory | None:
    """Apply one move to ``st`` (the ledger checked it); return the memory it leaves, if any."""
    first = st.transfer_count == 0
    rested = st.last_at is not None and move.at - st.last_at >= REST_BEFORE_REAWAKENING
    st.transfer_count += 1
    st.impact_sum = round(st.impact_sum + move.impact, 6)
    if move.receiver != st.previous_holder:
        st.network_hops += 1
    st.previous_holder, st.holder = st.holder, move.receiver
    st.last_seq, st.last_at = move.seq, move.at
    st.level = level = level_of(st.transfer_count, st.impact_sum, st.network_hops)
    rose = st.stage < len(STAGE_FLOORS) and level >= STAGE_FLOORS[st.stage]
    if rose:
        st.stage, st.evolved_at = stage_of(level), move.at
    if first or rose or rested or move.impact >= MEMORY_THRESHOLD or move.from_treasury:
        return _memory(st, move, first=first, rose=rose, rested=rested)
    return None  # the common case: nothing memorable


def _memory(st: DucatState, move: Move, *, first: bool, rose: bool, rested: bool) -> Memory | None:
    """The most significant candidate (the first listed among equals), if it reaches the threshold."""
    kind, significance = "", -1.0
    if move.from_treasury:
        kind, significance = "left_treasury", SIGNIFICANCE_LEFT_TREASURY
    if first and SIGNIFICANCE_FIRST_TRANSFER > significance:
        kind, significance = "first_transfer", SIGNIFICANCE_FIRST_TRANSFER
    if rose and round(0.5 + 0.1 * st.stage, 6) > significance:
        kind, significance = "stage_up", round(0.5 + 0.1 * st.stage, 6)
    if rested and SIGNIFICANCE_REAWAKENED > significance:
        kind, significance = "reawakened", SIGNIFICANCE_REAWAKENED
    if move.impact > significance:
        kind, significance = "great_transfer", move.impact
    if significance < MEMORY_THRESHOLD:
        return None
    to = move.receiver
    # only the kept kind's text is built (this runs for most first moves)
    if kind == "first_transfer":
        text = f"first transfer: {move.sender} to {to}"
    elif kind == "left_treasury":
        text = f"left the treasury for {to}"
    elif kind == "stage_up":
        text = f"reached stage {st.stage}"
    elif kind == "reawakened":
        text = f"woke from rest, moved to {to}"
    else:
        text = f"moved with {move.count - 1} others to {to}"
    return Memory(ducat_id=st.id, memory_id=move.seq, created_at=move.at, kind=kind,
                  counterparty=None if kind == "stage_up" else to, memory=text, significance=significance)


@dataclass(slots=True)
class MemoryWrites:
    """What :func:`remember` asks the database to do."""

    new: list[Memory] = field(default_factory=list)       # rows to insert
    changed: list[Memory] = field(default_factory=list)   # stored rows with new values
    gone: list[Memory] = field(default_factory=list)      # stored rows folded into a summary
    counts: dict[int, int] = field(default_factory=dict)  # rows per ducat afterwards


def remember(stored: dict[int, list[Memory]], new: Iterable[Memory]) -> MemoryWrites:
    """Add the batch's ``new`` memories (in log order) to the ducats' ``stored``
    rows (a ducat missing there has none)."""
    by_ducat: dict[int, list[Memory]] = {}
    for m in new:
        by_ducat.setdefault(m.ducat_id, []).append(m)
    out = MemoryWrites()
    for ducat, memories in by_ducat.items():
        before = stored.get(ducat, [])
        if not before and len(memories) == 1:  # the common case: a ducat's first memory
            out.new += memories
            out.counts[ducat] = 1
            continue
        rows, folded = remember_one(before, memories)
        ids = {r.memory_id for r in before}
        for r in rows:
            if r.dirty:
                (out.changed if r.memory_id in ids else out.new).append(r)
        out.gone += folded
        out.counts[ducat] = len(rows)
    return out


def remember_one(stored: Sequence[Memory], new: Iterable[Memory]) -> tuple[list[Memory], list[Memory]]:
    """One ducat: its rows afterwards (oldest first) and the stored rows folded away."""
    rows = sorted(stored, key=lambda m: m.memory_id)
    folded: list[Memory] = []
    for m in new:
        same = next((r for r in rows if not r.compressed and r.kind == m.kind
                     and r.counterparty == m.counterparty), None)
        if same is not None:
            _aggregate(same, m)
            continue
        rows.append(m)
        if len(rows) > MAX_MEMORIES_PER_DUCAT:
            folded.append(_compress(rows))
    stored_ids = {r.memory_id for r in stored}
    return rows, [r for r in folded if r.memory_id in stored_ids]


def _aggregate(row: Memory, m: Memory) -> None:
    row.occurrences += 1
    if m.significance > row.significance:
        row.significance, row.memory = m.significance, m.memory
    row.dirty = True


def _compress(rows: list[Memory]) -> Memory:
    """Fold the oldest live row into the summary, rows[0] (the oldest row becomes
    the summary if there is none yet); return the row folded away."""
    summary, gone = rows[0], rows.pop(1)
    summary.kind, summary.counterparty, summary.compressed = SUMMARY, None, True
    summary.occurrences += gone.occurrences
    summary.significance = max(summary.significance, gone.significance)
    summary.memory = f"{summary.occurrences} older memories, the strongest {summary.significance:g}"
    summary.dirty = True
    return gone
