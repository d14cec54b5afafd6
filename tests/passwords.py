"""Passwords of any printable characters, for properties that no part of one is ever shown."""

from __future__ import annotations

from hypothesis import strategies as st

# Any printable character: the URL's delimiters (/ @ : % ? # & =), spaces, non-ASCII.
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs"))
MARKERS = [f"Qz{i}Xk" for i in range(6)]  # in no URL, message or setting name


@st.composite
def passwords(draw: st.DrawFn) -> str:
    """A password of any printable characters with a marker between every few of them: any
    part of it that is shown holds a marker (or is at most 4 characters), whatever splits it."""
    gaps = draw(st.lists(st.text(PRINTABLE, max_size=4), min_size=2, max_size=len(MARKERS)))
    return "".join(marker + gap for marker, gap in zip(MARKERS, gaps, strict=False))


def shown_markers(text: str) -> list[str]:
    return [m for m in MARKERS if m in text]
