from __future__ import annotations

import pytest

from schemas.ducat_id import MAX_DUCAT_INT, ducat_int, ducat_ints, ducat_str
from schemas.errors import MalformedDucatId, SchemaError


@pytest.mark.parametrize(("text", "number"), [
    ("BATCH-12345-000001", 12_345_000_001), ("BATCH-0-000001", 1), ("BATCH-1-999999", 1_999_999),
    ("BATCH-999999999-999999", MAX_DUCAT_INT),
])
def test_ducat_int_and_ducat_str_are_inverse(text: str, number: int) -> None:
    assert ducat_int(text) == number
    assert ducat_str(number) == text


@pytest.mark.parametrize("text", [
    "BATCH-12345-1", "BATCH-12345-0000001", "BATCH--000001", "BATCH-1234567890-000001",
    "batch-1-000001", "BATCH-1-000001 ", "BATCH-012-000001", "BATCH-1-00000a", "", 12345,
])
def test_malformed_ids_raise_a_typed_error(text: object) -> None:
    with pytest.raises(MalformedDucatId):
        ducat_int(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("number", [-1, MAX_DUCAT_INT + 1, True, 1.0, "1"])
def test_out_of_range_numbers_raise_a_typed_error(number: object) -> None:
    with pytest.raises(SchemaError):
        ducat_str(number)  # type: ignore[arg-type]


def test_ducat_ints_converts_in_bulk_and_names_the_first_bad_id() -> None:
    ids = [f"BATCH-{b}-{s:06d}" for b in (0, 7, 999_999_999) for s in (1, 999_999)]
    assert ducat_ints(ids) == [ducat_int(i) for i in ids]
    assert ducat_ints([]) == []
    for bad in (["BATCH-1-000001", "BATCH-01-000001"], ["BATCH-1-000001\nBATCH-1-000002"], ["BATCH-1-000001", 5]):
        with pytest.raises(MalformedDucatId, match="BATCH-01|000002|5"):
            ducat_ints(bad)  # type: ignore[arg-type]
