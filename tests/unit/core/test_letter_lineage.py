"""Lineage: whatever order the letters are read in, each original keeps only its latest letter
and the number of letters that name it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.core.letter_lineage import Lineage

# (original, failed_at, partition, offset): a DLQ's letters, offsets unique per partition.
letters = st.lists(
    st.tuples(st.sampled_from(["t:0:1", "t:0:2", "u:3:9"]), st.integers(0, 50), st.integers(0, 2)),
    max_size=60,
).map(lambda rows: [(o, float(t), p, i) for i, (o, t, p) in enumerate(rows)])


@given(letters)
def test_each_original_keeps_its_last_failed_letter_and_counts_all_of_them(
    rows: list[tuple[str, float, int, int]],
) -> None:
    lineage: Lineage[int] = Lineage()
    for original, failed_at, partition, offset in rows:
        lineage.add(original, offset, failed_at=failed_at, partition=partition, offset=offset)

    assert {o for o, _ in lineage.chains()} == {o for o, *_ in rows}
    for original, chain in lineage.chains():
        mine = [r for r in rows if r[0] == original]
        last = max(r[1] for r in mine)
        # Of letters failed at the same instant, the one read last.
        expected = [r for r in mine if r[1] == last][-1]
        assert (chain.failed_at, chain.partition, chain.offset) == expected[1:]
        assert chain.latest == expected[3]
        assert chain.attempts == len(mine)


def test_an_original_never_seen_has_no_chain() -> None:
    lineage: Lineage[None] = Lineage()
    lineage.add("t:0:1", None, failed_at=1.0, partition=0, offset=0)

    assert lineage.chain("t:0:2") is None
