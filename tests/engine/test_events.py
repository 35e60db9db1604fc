"""TokenDelta, the one event built per piece of an answer, keeps the dataclass promises."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from cortan.core.events import TokenDelta


def test_token_delta_sets_every_field() -> None:
    delta = TokenDelta(3, "abc")
    assert [f.name for f in dataclasses.fields(TokenDelta)] == ["request_id", "text"]
    assert dataclasses.asdict(delta) == {"request_id": 3, "text": "abc"}
    assert TokenDelta(request_id=3, text="abc") == delta


def test_token_delta_is_hashable_and_slotted() -> None:
    delta = TokenDelta(1, "x")
    with pytest.raises(AttributeError):
        delta.colour = "red"  # type: ignore[attr-defined]
    assert not hasattr(delta, "__dict__")
    assert hash(delta) == hash(TokenDelta(1, "x"))
    assert repr(delta) == "TokenDelta(request_id=1, text='x')"


def test_token_delta_replace_and_pickle() -> None:
    delta = TokenDelta(1, "x")
    assert dataclasses.replace(delta, text="y") == TokenDelta(1, "y")
    assert pickle.loads(pickle.dumps(delta)) == delta
